package natsx

import (
	"net"
	"strings"
	"testing"
	"time"
)

// A busy port is reported at once, naming the address, not after a
// readiness timeout.
func TestStartEmbeddedOnABusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	start := time.Now()
	s, err := StartEmbedded(EmbeddedOptions{Listen: ln.Addr().String(), StoreDir: t.TempDir()})
	if err == nil {
		s.Shutdown()
		t.Fatal("started on a busy port")
	}
	if !strings.Contains(err.Error(), ln.Addr().String()+" is in use") || time.Since(start) > 2*time.Second {
		t.Errorf("err = %v after %s, want a quick 'is in use' naming the address", err, time.Since(start))
	}
}

// Port 0 picks a free port, and the server says which.
func TestStartEmbeddedOnPortZero(t *testing.T) {
	s, err := StartEmbedded(EmbeddedOptions{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	if strings.HasSuffix(s.ClientURL(), ":0") || strings.HasSuffix(s.ClientURL(), ":-1") {
		t.Errorf("client URL %s does not name the port picked", s.ClientURL())
	}
}
