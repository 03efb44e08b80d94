// Package rtsptest runs a real RTSP server on loopback for camera tests:
// github.com/bluenviron/gortsplib's server, relaying what a publisher
// (Debian's ffmpeg, streaming a clip) records to every reader, as an IP
// camera or an RTSP proxy such as MediaMTX would serve it.
package rtsptest

import (
	"fmt"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// Server relays one stream, published at any path, to readers.
type Server struct {
	Addr string // host:port
	srv  *gortsplib.Server

	mu        sync.Mutex
	stream    *gortsplib.ServerStream
	publisher *gortsplib.ServerSession
}

// Start listens on addr ("127.0.0.1:0" picks a port) and stops the server
// when the test ends.
func Start(t testing.TB, addr string) *Server {
	t.Helper()
	if addr == "" || addr == "127.0.0.1:0" {
		addr = freeAddr(t)
	}
	s := &Server{Addr: addr}
	s.srv = &gortsplib.Server{Handler: s, RTSPAddress: addr}
	if err := s.srv.Start(); err != nil {
		t.Fatalf("rtsp server: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the server, dropping publisher and readers.
func (s *Server) Close() {
	s.srv.Close()
}

// URL is the stream's address for a reader.
func (s *Server) URL(path string) string { return fmt.Sprintf("rtsp://%s/%s", s.Addr, path) }

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// OnSessionClose drops the stream when its publisher leaves.
func (s *Server) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream != nil && ctx.Session == s.publisher {
		s.stream.Close()
		s.stream, s.publisher = nil, nil
	}
}

// OnDescribe answers readers with the published stream, 404 before one.
func (s *Server) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, s.stream, nil
}

// OnAnnounce takes a new publisher, replacing the previous one.
func (s *Server) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream != nil {
		s.stream.Close()
		s.publisher.Close()
	}
	s.stream = gortsplib.NewServerStream(s.srv, ctx.Description)
	s.publisher = ctx.Session
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSetup serves the stream's media to readers and accepts the
// publisher's.
func (s *Server) OnSetup(*gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, s.stream, nil
}

// OnPlay lets a reader start.
func (s *Server) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnRecord relays the publisher's packets to the readers.
func (s *Server) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	s.mu.Lock()
	stream := s.stream
	s.mu.Unlock()
	ctx.Session.OnPacketRTPAny(func(m *description.Media, _ format.Format, pkt *rtp.Packet) {
		stream.WritePacketRTP(m, pkt) //nolint:errcheck // a reader that cannot keep up is its problem
	})
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// Publish streams a clip to the server with ffmpeg at its real rate,
// looping it, until Stop or the test ends. It waits until the stream is
// readable.
func (s *Server) Publish(t testing.TB, ffmpeg, clip, path string) *Publisher {
	t.Helper()
	cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
		"-i", clip, "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", s.URL(path))
	if err := cmd.Start(); err != nil {
		t.Fatalf("ffmpeg publish: %v", err)
	}
	p := &Publisher{cmd: cmd}
	t.Cleanup(p.Stop)
	deadline := time.Now().Add(15 * time.Second)
	for {
		s.mu.Lock()
		up := s.stream != nil
		s.mu.Unlock()
		if up {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatal("rtsp: the publisher did not start within 15 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Publisher is a running ffmpeg publisher.
type Publisher struct {
	cmd  *exec.Cmd
	once sync.Once
}

// Stop kills the publisher.
func (p *Publisher) Stop() {
	p.once.Do(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	})
}
