package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/facedhq/faced/internal/cliptest"
	"github.com/facedhq/faced/internal/rtsptest"
	"github.com/facedhq/faced/internal/testenv"
)

// chromiumPath finds Debian's Chromium. Missing, the test fails with how
// to install it: the browser tests are part of `make test`, not optional.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium on PATH: the admin page's browser tests need it; install it with `make deps` " +
		"(or: sudo apt-get install --no-install-recommends chromium)")
	return ""
}

// pageProblems collects what a page must not produce: uncaught
// exceptions, console errors, error log entries (failed loads, CSP
// violations) and securitypolicyviolation events.
type pageProblems struct {
	mu   sync.Mutex
	list []string
}

func (p *pageProblems) add(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, s)
}

// check fails the test on any problem collected since the last check
// but those containing one of allow, and starts again.
func (p *pageProblems) check(t *testing.T, step string, allow ...string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
next:
	for _, s := range p.list {
		for _, a := range allow {
			if strings.Contains(s, a) {
				continue next
			}
		}
		t.Errorf("%s: %s", step, s)
	}
	p.list = nil
}

// cspWatch reports securitypolicyviolation events as console errors. It
// is injected through the DevTools protocol, which the page's CSP does
// not govern (the page itself has no inline script).
const cspWatch = `document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + e.blockedURI);
});`

// TestAdminPageBrowser drives the admin page of a real `faced serve` on
// loopback with headless Chromium, through #15's flow: log in with the
// first-run key, enrol by upload, find the person, see an identify
// event, enrol a second face from it, a read key refused, log out, and
// a forged post without the CSRF token refused. Every page must load
// without a console error or CSP violation; screenshots are kept under
// the test's temp dir.
func TestAdminPageBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	data := filepath.Join(t.TempDir(), "data")
	addr, log := startServe(t, "--listen", "127.0.0.1:0", "--data-dir", data, "--attributes=false")
	m := firstRunLine.FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("no first-run key line in the log:\n%s", log)
	}
	adminKey, base := m[1], strings.TrimSuffix(m[2], "/")
	shots := t.TempDir()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1000, 900),
		// A synthetic camera, allowed without a prompt: the webcam capture.
		chromedp.Flag("use-fake-device-for-media-stream", true), chromedp.Flag("use-fake-ui-for-media-stream", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()

	problems := &pageProblems{}
	listen := func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			problems.add(fmt.Sprintf("exception: %s (%s:%d)", msg, d.URL, d.LineNumber))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value))
				}
				problems.add("console error: " + strings.Join(parts, " "))
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				problems.add(fmt.Sprintf("log %s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		case *page.EventJavascriptDialogOpening:
			problems.add("unexpected dialog: " + ev.Message)
		}
	}
	// fatal ends the test at a failed step, saying where the browser was.
	fatal := func(step string, err error) {
		t.Helper()
		url, _ := chromedp.Run(ctx, chromedp.Location())
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		t.Fatalf("%s: %v\nat %s:\n%s", step, err, url, html)
	}
	// run runs a step's actions, each step bounded on its own so that a
	// stuck one reports where it stuck.
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			fatal(step, err)
		}
	}
	text := func(step string, sel chromedp.ID) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			fatal(step, err)
		}
		return s
	}
	n := 0
	screenshot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100) /* 100: PNG */)
		if err != nil {
			fatal("screenshot "+name, err)
		}
		n++
		p := filepath.Join(shots, fmt.Sprintf("%02d-%s.png", n, name))
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	if err := chromedp.Listen(ctx, listen); err != nil {
		t.Fatalf("start Chromium (%s): %v", chromium, err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspWatch}); err != nil {
		t.Fatal(err)
	}
	login := func(step, key string) {
		t.Helper()
		run(step,
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible(chromedp.ID("#key")),
			chromedp.SetValue(chromedp.ID("#key"), key),
			chromedp.Click(chromedp.CSS("#login-form button")),
			chromedp.WaitVisible(chromedp.ID("#faces")))
	}
	exists := func(sel string) bool {
		t.Helper()
		nodes, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll(sel), chromedp.AtLeast(0)))
		if err != nil {
			fatal("look for "+sel, err)
		}
		return len(nodes) > 0
	}
	// post sends a form from the page's own script context (same origin,
	// the session's cookie), with or without the page's CSRF token, and
	// returns the status.
	post := func(step, path string, withToken bool) int64 {
		t.Helper()
		js := fmt.Sprintf(`(function () {
  var f = new URLSearchParams();
  var c = document.querySelector('input[name="csrf"]');
  if (%t && c) { f.set("csrf", c.value); }
  return fetch(%q, {method: "POST", body: f}).then(function (r) { return r.status; });
})()`, withToken, path)
		status, err := chromedp.Run(ctx, chromedp.Evaluate[int64](js, chromedp.EvalAwaitPromise))
		if err != nil {
			fatal(step, err)
		}
		return status
	}

	// 1. Log in with the first-run key.
	run("login page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("#key")))
	screenshot("login")
	// By keyboard alone: the key field has the focus, Enter submits.
	focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id`))
	if err != nil || focused != "key" {
		t.Errorf("1 login page: focus on %q (%v), want the key field", focused, err)
	}
	run("1 log in with the first-run key, by keyboard",
		chromedp.KeyEvent(adminKey),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.ID("faces")))
	screenshot("dashboard")
	if v := text("1 version", "#version"); !strings.Contains(v, "devel") && !strings.Contains(v, "revision") {
		t.Errorf("1 dashboard version %q", v)
	}
	problems.check(t, "1 log in")

	// The enrol form's webcam capture fills its file field (the synthetic
	// camera shows no face, so the upload below is what is enrolled).
	run("webcam capture",
		chromedp.Navigate(base+"/ui/persons"),
		chromedp.WaitVisible(chromedp.ID("cam-start")),
		chromedp.Click(chromedp.ID("cam-start")),
		chromedp.WaitVisible(chromedp.ID("cam-shoot")))
	poll := func(step, expr string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := chromedp.Run(sctx, chromedp.Poll[bool](expr)); err != nil {
			fatal(step, err)
		}
	}
	poll("webcam frame", `document.getElementById("cam-video").videoWidth > 0`)
	run("webcam shoot", chromedp.Click(chromedp.ID("cam-shoot")))
	poll("webcam photo in the form", `(function () { var f = document.getElementById("p-photo").files; return f.length === 1 && f[0].name === "camera.jpg" && f[0].size > 1000; })()`)
	screenshot("webcam")
	problems.check(t, "webcam capture")

	// 2. Enrol a person by file upload.
	photo := filepath.Join(testenv.DataDir(t), "deepface", "img1.jpg")
	run("2 enrol by upload",
		chromedp.Navigate(base+"/ui/persons"),
		chromedp.WaitVisible(chromedp.ID("#create-person")),
		chromedp.SetValue(chromedp.ID("#p-id"), "angelina"),
		chromedp.SetValue(chromedp.ID("#p-name"), "Angelina Jolie"),
		chromedp.SetValue(chromedp.ID("#p-card"), "4242"),
		chromedp.SetUploadFiles(chromedp.ID("#p-photo"), []string{photo}),
		chromedp.Click(chromedp.CSS(`#create-person button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("#person-id")))
	if personID := text("2 person page", "#person-id"); personID != "angelina" {
		t.Fatalf("2 enrol: person page of %q", personID)
	}
	screenshot("person")
	problems.check(t, "2 enrol")

	// 3. Find them in the list.
	run("3 search",
		chromedp.Navigate(base+"/ui/persons"),
		chromedp.WaitVisible(chromedp.ID("#q")),
		chromedp.SetValue(chromedp.ID("#q"), "jolie"),
		chromedp.Submit(chromedp.ID("#q")),
		chromedp.WaitVisible(chromedp.CSS(`#persons a[href="/ui/persons/angelina"]`)))
	screenshot("persons")
	problems.check(t, "3 search")

	// 4. Identify them through the API, keeping the crop; see the event.
	eventID := identifyRecord(t, addr, adminKey, filepath.Join(testenv.DataDir(t), "deepface", "img2.jpg"))
	row := fmt.Sprintf("#event-%d", eventID)
	run("4 the event on the page",
		chromedp.Navigate(base+"/ui/events"),
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.CSS(row+" img")))
	rowText, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(row)))
	if err != nil {
		fatal("4 event row", err)
	}
	if !strings.Contains(rowText, "angelina") {
		t.Errorf("4 event row: %q, want the person", rowText)
	}
	screenshot("events")
	problems.check(t, "4 events")

	// 5. Enrol a second face from that event (to the matched person).
	run("5 enrol from the event",
		chromedp.Click(chromedp.CSS(row+" form.enrol button")),
		chromedp.WaitVisible(chromedp.ID("#person-id")))
	faces, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll("#faces li"), chromedp.AtLeast(0)))
	if err != nil {
		fatal("5 faces", err)
	}
	if len(faces) != 2 {
		t.Errorf("5 after enrolling from the event: %d faces, want 2", len(faces))
	}
	screenshot("second-face")
	problems.check(t, "5 enrol from the event")

	// 6. Create a read key, log in with it: edit controls absent, and a
	// change posted with a valid CSRF token refused (403).
	run("6 create a read key",
		chromedp.Navigate(base+"/ui/keys"),
		chromedp.WaitVisible(chromedp.ID("#create-key")),
		chromedp.SetValue(chromedp.ID("#k-name"), "viewer"),
		chromedp.Click(chromedp.ID("#scope-read")),
		chromedp.Click(chromedp.CSS("#create-key button")),
		chromedp.WaitVisible(chromedp.ID("#new-key")))
	readKey := text("6 the new key", "#new-key")
	screenshot("key-created")
	run("6 log out the admin", chromedp.Click(chromedp.ID("#logout")), chromedp.WaitVisible(chromedp.ID("#key")))
	login("6 log in with the read key", readKey)
	if !exists("#readonly") {
		t.Error("6 read key: the page does not say read only")
	}
	run("6 persons as read", chromedp.Navigate(base+"/ui/persons"), chromedp.WaitVisible(chromedp.ID("#q")))
	if exists("#create-person") {
		t.Error("6 read key: the enrol form is shown")
	}
	run("6 person as read", chromedp.Navigate(base+"/ui/persons/angelina"), chromedp.WaitVisible(chromedp.ID("#person-id")))
	if exists("#edit-person") || exists(`form[action$="/delete"]`) {
		t.Error("6 read key: edit or delete controls shown")
	}
	if exists(`a[href="/ui/keys"]`) {
		t.Error("6 read key: the keys section is offered")
	}
	screenshot("read-only")
	if st := post("6 read key deletes", "/ui/persons/angelina/delete", true); st != http.StatusForbidden {
		t.Errorf("6 read key's delete with a valid CSRF token: %d, want 403", st)
	}
	problems.check(t, "6 read key", "status of 403")

	// 7. Log out: the session is gone.
	run("7 log out",
		chromedp.Click(chromedp.ID("#logout")),
		chromedp.WaitVisible(chromedp.ID("#key")),
		chromedp.Navigate(base+"/ui/persons"),
		chromedp.WaitVisible(chromedp.ID("#key")))
	screenshot("logged-out")
	problems.check(t, "7 log out")

	// 8. A forged post without the CSRF token is refused.
	login("8 log in again", adminKey)
	if st := post("8 forged delete", "/ui/persons/angelina/delete", false); st != http.StatusForbidden {
		t.Errorf("8 delete without the CSRF token: %d, want 403", st)
	}
	problems.check(t, "8 forged post", "status of 403")
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/persons/angelina", nil)
	var res *http.Response
	req.Header.Set("Authorization", "Bearer "+adminKey)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("after the refused posts, GET the person: %d, want 200 (still there)", res.StatusCode)
	}
	// Every section renders cleanly.
	for _, path := range []string{"/", "/ui/persons", "/ui/persons/angelina", "/ui/events", "/ui/keys", "/ui/settings"} {
		run("visit "+path, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.ID("#main")))
	}
	if set := text("settings", "#settings"); !strings.Contains(set, "listen: 127.0.0.1:") || strings.Contains(set, adminKey) {
		t.Errorf("settings page: %q", set)
	}
	screenshot("settings")
	problems.check(t, "sections")

	// On a phone's viewport no page scrolls sideways.
	run("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	for _, path := range []string{"/", "/ui/persons", "/ui/persons/angelina", "/ui/events", "/ui/keys"} {
		run("phone "+path, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.ID("main")))
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > document.documentElement.clientWidth + 1`))
		if err != nil {
			fatal("phone "+path, err)
		}
		if wide {
			t.Errorf("%s scrolls sideways on a 390 px wide phone", path)
		}
	}
	screenshot("phone-keys")
	problems.check(t, "phone")
}

// identifyRecord identifies a photo through the native API, recording
// the event with its crop, and returns the event's id.
func identifyRecord(t *testing.T, addr, key, photo string) uint64 {
	t.Helper()
	b, err := os.ReadFile(photo)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/identify?record=true&snapshot=true", strings.NewReader(string(b)))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "image/jpeg")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Faces []struct {
			Matched bool   `json:"matched"`
			EventID uint64 `json:"event_id"`
		} `json:"faces"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("identify: %d %v", res.StatusCode, err)
	}
	if len(out.Faces) != 1 || !out.Faces[0].Matched || out.Faces[0].EventID == 0 {
		t.Fatalf("identify: %+v, want one matched face with an event", out)
	}
	return out.Faces[0].EventID
}

// TestAdminPageCameraStream: the cameras section shows a real camera's
// live MJPEG stream to a logged-in session (same origin, authorised by
// the session cookie), and not to a browser without one.
func TestAdminPageCameraStream(t *testing.T) {
	dir := t.TempDir()
	clip := cliptest.Approach{Photo: testenv.DataDir(t) + "/deepface/img2.jpg"}.Make(t, dir)
	rtsp := rtsptest.Start(t, "")
	config := filepath.Join(dir, "faced.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, `
data_dir: %s
listen: 127.0.0.1:0
vision:
  attributes: false
cameras:
  - id: door-cam
    url: %s
    fps: 10
`, filepath.Join(dir, "data"), rtsp.URL("door")), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, log := startServe(t, "--config", config)
	m := firstRunLine.FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("no first-run key line in the log:\n%s", log)
	}
	rtsp.Publish(t, cliptest.FFmpeg(t), clip, "door")
	base := "http://" + addr
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	anon := &http.Client{CheckRedirect: noRedirect}
	res, err := anon.Get(base + "/ui/cameras/door-cam/mjpeg")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/ui/login" {
		t.Errorf("stream without a session: %d %s, want a redirect to the login", res.StatusCode, res.Header.Get("Location"))
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: noRedirect}
	res, err = browser.PostForm(base+"/ui/login", url.Values{"key": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}
	res, err = browser.Get(base + "/ui/cameras")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(page), `src="/ui/cameras/door-cam/mjpeg"`) {
		t.Fatalf("cameras page: %d\n%s", res.StatusCode, page)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ui/cameras/door-cam/mjpeg", nil)
	readMJPEGPart(t, browser, req)
}
