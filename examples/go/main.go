// Command faced-client is a faced client in Go, standard library only.
// It creates a gallery, enrols a person from a photo, identifies a probe
// photo in the gallery and verifies it against the person:
//
//	FACED_TOKEN=<id>.<secret> go run ./examples/go \
//	    -url http://127.0.0.1:8080 -gallery staff \
//	    -id angelina -name "Angelina Jolie" enrol.jpg probe.jpg
//
// The token needs the write scope to enrol (a door controller that only
// identifies holds a read key). Photos travel as base64 in JSON ([]byte
// fields marshal as base64); multipart and raw image/* bodies work too.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// problem is an API error (application/problem+json).
type problem struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

func (p *problem) Error() string { return fmt.Sprintf("HTTP %d %s: %s", p.Status, p.Code, p.Detail) }

// client calls one faced with one key.
type client struct {
	url, token string
	http       *http.Client
}

// call sends body as JSON and decodes the JSON answer into out.
func (c *client) call(ctx context.Context, method, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.url, "/")+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		p := &problem{Status: resp.StatusCode}
		json.NewDecoder(resp.Body).Decode(p) // best effort: the status alone says enough
		return p
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// match is one candidate of an identified face.
type match struct {
	Person struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"person"`
	Confidence float64 `json:"confidence"`
}

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "faced's base URL")
	gallery := flag.String("gallery", "staff", "gallery to create and search")
	id := flag.String("id", "", "person id to enrol (required)")
	name := flag.String("name", "", "the person's name")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: FACED_TOKEN=KEY faced-client -id ID [flags] ENROL.jpg PROBE.jpg")
		flag.PrintDefaults()
	}
	flag.Parse()
	token := os.Getenv("FACED_TOKEN")
	if *id == "" || flag.NArg() != 2 || token == "" {
		flag.Usage()
		os.Exit(2)
	}
	c := &client{url: *url, token: token, http: &http.Client{Timeout: time.Minute}}
	if err := run(context.Background(), c, *gallery, *id, *name, flag.Arg(0), flag.Arg(1)); err != nil {
		fmt.Fprintln(os.Stderr, "faced-client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c *client, gallery, id, name, enrolPath, probePath string) error {
	enrolPhoto, err := os.ReadFile(enrolPath)
	if err != nil {
		return err
	}
	probe, err := os.ReadFile(probePath)
	if err != nil {
		return err
	}

	var p *problem
	err = c.call(ctx, "POST", "/v1/galleries", map[string]string{"name": gallery}, &struct{}{})
	switch {
	case err == nil:
		fmt.Printf("gallery %s: created\n", gallery)
	case errors.As(err, &p) && p.Status == http.StatusConflict: // it exists already
		fmt.Printf("gallery %s: exists\n", gallery)
	default:
		return err
	}

	var enrolled struct {
		Person struct {
			ID string `json:"id"`
		} `json:"person"`
		Faces []json.RawMessage `json:"faces"`
	}
	if err := c.call(ctx, "POST", "/v1/persons", map[string]any{
		"id": id, "name": name, "galleries": []string{gallery}, "photos": [][]byte{enrolPhoto},
	}, &enrolled); err != nil {
		return err
	}
	fmt.Printf("enrolled %s: %d face(s)\n", enrolled.Person.ID, len(enrolled.Faces))

	var identified struct {
		Faces []struct {
			Matches []match `json:"matches"`
		} `json:"faces"`
	}
	if err := c.call(ctx, "POST", "/v1/identify", map[string]any{"gallery": gallery, "photo": probe}, &identified); err != nil {
		return err
	}
	if len(identified.Faces) == 0 || len(identified.Faces[0].Matches) == 0 {
		fmt.Println("identify: no match")
	} else {
		m := identified.Faces[0].Matches[0]
		fmt.Printf("identify: %s confidence %.2f\n", m.Person.ID, m.Confidence)
	}

	var verified struct {
		Verified bool `json:"verified"`
		Pairs    []struct {
			Confidence float64 `json:"confidence"`
		} `json:"pairs"`
	}
	if err := c.call(ctx, "POST", "/v1/verify", map[string]any{"person_id": id, "photo1": probe}, &verified); err != nil {
		return err
	}
	if len(verified.Pairs) == 0 {
		return errors.New("verify: no pair in the answer")
	}
	verdict := "not verified"
	if verified.Verified {
		verdict = "verified"
	}
	fmt.Printf("verify %s: %s confidence %.2f\n", id, verdict, verified.Pairs[0].Confidence)
	return nil
}
