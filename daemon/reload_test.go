package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/service"
)

// writeCert writes a fresh self-signed certificate and key named cn.
func writeCert(t *testing.T, dir, cn string) TLSConfig {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := TLSConfig{CertFile: filepath.Join(dir, cn+".crt"), KeyFile: filepath.Join(dir, cn+".key")}
	if err := os.WriteFile(c.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

func servedCN(t *testing.T, live *Live) string {
	t.Helper()
	c, err := live.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Subject.CommonName
}

// Reload applies keys, threshold, log level and certificate; other
// changes are logged as ignored; a failure changes nothing.
func TestReload(t *testing.T) {
	d := openTestDaemon(t)
	dir := t.TempDir()
	var logBuf syncBuf
	logger := slog.New(slog.NewTextHandler(&logBuf, nil))

	running := DefaultConfig()
	running.TLS = writeCert(t, dir, "first")
	live := &Live{}
	cert, err := LoadCertificate(running.TLS)
	if err != nil {
		t.Fatal(err)
	}
	live.SetCertificate(cert)

	const secret = "reload-test-secret-0123456789"
	next := running
	next.LogLevel = "debug"
	next.Service.Threshold = "strict"
	next.Keys = []KeyConfig{{ID: "0123456789ab", Name: "door", SecretSHA256: hex.EncodeToString(auth.HashSecret(secret)), Scopes: []string{"read"}}}
	next.TLS = writeCert(t, dir, "second")
	next.Listen = "0.0.0.0:9999"
	next.Vision.Threads = 2
	if err := next.Validate(); err != nil {
		t.Fatal(err)
	}
	applied, err := d.Reload(t.Context(), running, next, live, logger)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := service.Authenticate(t.Context(), d.Store, "0123456789ab."+secret, "read"); err != nil {
		t.Errorf("the new key does not authenticate: %v", err)
	}
	if got := d.Service.CurrentThreshold(); got != (service.Threshold{Value: 0.80}) {
		t.Errorf("threshold %+v, want strict", got)
	}
	if live.Level.Level() != slog.LevelDebug {
		t.Errorf("log level %v", live.Level.Level())
	}
	if cn := servedCN(t, live); cn != "second" {
		t.Errorf("certificate %q, want the new one", cn)
	}
	if applied.Listen != running.Listen || applied.Vision.Threads != running.Vision.Threads {
		t.Errorf("restart-only settings applied: listen %q, threads %d", applied.Listen, applied.Vision.Threads)
	}
	if applied.LogLevel != "debug" || applied.Service.Threshold != "strict" || len(applied.Keys) != 1 || applied.TLS != next.TLS {
		t.Errorf("reloadable settings not in the returned config: %+v", applied)
	}
	for _, s := range []string{"listen", "vision.threads"} {
		if !strings.Contains(logBuf.String(), "setting changed; ignored until restart\" setting="+s) {
			t.Errorf("log lacks %s ignored:\n%s", s, logBuf.String())
		}
	}
	if strings.Contains(logBuf.String(), "setting=log_level") {
		t.Errorf("a reloaded setting logged as ignored:\n%s", logBuf.String())
	}

	// A certificate that does not load: nothing changes.
	bad := applied
	bad.LogLevel = "error"
	bad.Service.Threshold = "none"
	bad.TLS.CertFile = filepath.Join(dir, "missing.crt")
	if _, err := d.Reload(t.Context(), applied, bad, live, logger); err == nil || !strings.Contains(err.Error(), "config: tls: certificate:") {
		t.Fatalf("reload with a missing certificate: %v", err)
	}
	if live.Level.Level() != slog.LevelDebug || d.Service.CurrentThreshold() != (service.Threshold{Value: 0.80}) || servedCN(t, live) != "second" {
		t.Error("a failed reload changed the running settings")
	}

	// Turning TLS off needs a restart.
	off := applied
	off.TLS = TLSConfig{}
	got, err := d.Reload(t.Context(), applied, off, live, logger)
	if err != nil || got.TLS != applied.TLS || !strings.Contains(logBuf.String(), "setting=tls\n") {
		t.Errorf("TLS off: %v, %+v\n%s", err, got.TLS, logBuf.String())
	}
}
