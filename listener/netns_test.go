package listener

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netnsPair makes two network namespaces joined by a veth pair:
// server side 10.200.45.1/24, client side 10.200.45.2/24. Both are
// deleted at the end of the test. It skips when namespaces cannot be
// made (not root, no ip(8), no CAP_SYS_ADMIN in a container).
func netnsPair(t *testing.T) (srvNS, cliNS string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	ipBin, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("ip(8) not installed (Debian iproute2)")
	}
	id := os.Getpid() % 100000
	srvNS, cliNS = fmt.Sprintf("rq-lsrv-%d", id), fmt.Sprintf("rq-lcli-%d", id)
	vs, vc := fmt.Sprintf("rqs%d", id), fmt.Sprintf("rqc%d", id)
	run := func(args ...string) error {
		out, err := exec.Command(ipBin, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("netns", "add", srvNS); err != nil {
		t.Skipf("cannot create a network namespace here: %v", err)
	}
	t.Cleanup(func() { run("netns", "del", srvNS) })
	if err := run("netns", "add", cliNS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run("netns", "del", cliNS) })
	for _, args := range [][]string{
		{"link", "add", vs, "netns", srvNS, "type", "veth", "peer", "name", vc, "netns", cliNS},
		{"-n", srvNS, "addr", "add", "10.200.45.1/24", "dev", vs},
		{"-n", cliNS, "addr", "add", "10.200.45.2/24", "dev", vc},
		{"-n", srvNS, "link", "set", vs, "up"},
		{"-n", cliNS, "link", "set", vc, "up"},
		{"-n", srvNS, "link", "set", "lo", "up"},
		{"-n", cliNS, "link", "set", "lo", "up"},
	} {
		if err := run(args...); err != nil {
			t.Fatal(err)
		}
	}
	return srvNS, cliNS
}

// inNetns runs fn on an OS thread switched into the named namespace;
// sockets fn creates belong to that namespace for their whole life.
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with this goroutine
			// instead of serving others from the wrong namespace.
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// TestOpenRelay: a client in another network namespace (not loopback, not
// in MyNetworks) cannot relay without AUTH, cannot AUTH without TLS, and
// can relay after STARTTLS and AUTH. A bind to a non-loopback address
// without MyNetworks or AUTH is refused.
func TestOpenRelay(t *testing.T) {
	srvNS, cliNS := netnsPair(t)
	listen := func(t *testing.T) net.Listener {
		var ln net.Listener
		if err := inNetns(srvNS, func() (err error) {
			ln, err = net.Listen("tcp", "10.200.45.1:2525")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return ln
	}
	dial := func(t *testing.T) *raw {
		var c net.Conn
		if err := inNetns(cliNS, func() (err error) {
			c, err = net.DialTimeout("tcp", "10.200.45.1:2525", 10*time.Second)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		r := &raw{t: t, c: c, br: newReader(c)}
		r.expect("220")
		return r
	}
	serve := func(t *testing.T, o Options) *sink {
		k := &sink{}
		o.Submit, o.Log, o.AuthFailDelay, o.Hostname = k.Submit, testLog(t), -1, "relay.test"
		srv, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		ln := listen(t)
		done := make(chan error, 1)
		go func() { done <- srv.ServeTCP(ln) }()
		t.Cleanup(func() {
			srv.Close()
			if err := <-done; err != nil {
				t.Errorf("ServeTCP: %v", err)
			}
		})
		return k
	}

	t.Run("bind refused without mynetworks or auth", func(t *testing.T) {
		srv, err := New(Options{Submit: (&sink{}).Submit, Log: testLog(t)})
		if err != nil {
			t.Fatal(err)
		}
		err = srv.ServeTCP(listen(t))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "never an open relay") {
			t.Fatalf("ServeTCP on 10.200.45.1: %v, want ErrConfig", err)
		}
	})

	t.Run("outside mynetworks", func(t *testing.T) {
		k := serve(t, Options{MyNetworks: []netipPrefix{mustPrefix("10.200.99.0/24")}})
		r := dial(t)
		r.cmd("EHLO outside.test", "250")
		r.cmd("MAIL FROM:<spammer@example.com>", "554 5.7.1")
		r.cmd("RCPT TO:<victim@example.org>", "502")
		r.cmd("DATA", "502")
		if len(k.all()) != 0 {
			t.Fatal("relayed")
		}
	})

	t.Run("inside mynetworks", func(t *testing.T) {
		k := serve(t, Options{MyNetworks: []netipPrefix{mustPrefix("10.200.45.2/32")}})
		r := dial(t)
		r.cmd("EHLO inside.test", "250")
		r.cmd("MAIL FROM:<app@example.com>", "250")
		r.cmd("RCPT TO:<user@example.org>", "250")
		r.cmd("DATA", "354")
		r.send("Subject: allowed\r\n\r\nx\r\n.\r\n")
		r.expect("250 2.0.0 Ok: queued as")
		if m := k.all(); len(m) != 1 || !strings.HasPrefix(m[0].env.Origin, "10.200.45.2:") || !strings.HasPrefix(m[0].body, "Received: from inside.test ([10.200.45.2])") {
			t.Fatalf("messages %+v", m)
		}
	})

	t.Run("auth needs tls then relays", func(t *testing.T) {
		srvTLS, cliTLS := selfSigned(t)
		k := serve(t, Options{Users: usersFile(t, "app", "app pw"), TLSConfig: srvTLS})
		r := dial(t)
		ehlo := r.cmd("EHLO outside.test", "250")
		if strings.Contains(ehlo, "AUTH") || !strings.Contains(ehlo, "STARTTLS") {
			t.Errorf("plaintext EHLO from outside: %q (want STARTTLS, no AUTH)", ehlo)
		}
		r.cmd("MAIL FROM:<app@example.com>", "530 5.7.0")
		r.cmd("AUTH PLAIN "+b64("\x00app\x00app pw"), "538 5.7.11")
		r.cmd("MAIL FROM:<app@example.com>", "530 5.7.0")
		r.cmd("STARTTLS", "220")
		tc := tlsClient(r.c, cliTLS)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		r = &raw{t: t, c: tc, br: newReader(tc)}
		if ehlo := r.cmd("EHLO outside.test", "250"); !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
			t.Errorf("EHLO after TLS: %q", ehlo)
		}
		r.cmd("AUTH PLAIN "+b64("\x00app\x00wrong"), "535 5.7.8")
		r.cmd("MAIL FROM:<app@example.com>", "530 5.7.0")
		if len(k.all()) != 0 {
			t.Fatal("relayed before AUTH")
		}
		r.cmd("AUTH PLAIN "+b64("\x00app\x00app pw"), "235")
		r.cmd("MAIL FROM:<app@example.com>", "250")
		r.cmd("RCPT TO:<user@example.org>", "250")
		r.cmd("DATA", "354")
		r.send("Subject: authenticated\r\n\r\nx\r\n.\r\n")
		r.expect("250 2.0.0 Ok: queued as")
		if m := k.all(); len(m) != 1 || !strings.Contains(m[0].body, "with ESMTPSA;") || !strings.HasSuffix(m[0].env.Origin, "user=app") {
			t.Fatalf("messages %+v", m)
		}
	})

	t.Run("swaks", func(t *testing.T) {
		swaks, err := exec.LookPath("swaks")
		if err != nil {
			t.Skip("swaks not installed (Debian swaks); the go client cases above cover the same ground")
		}
		srvTLS, _ := selfSigned(t)
		k := serve(t, Options{Users: usersFile(t, "app", "app pw"), TLSConfig: srvTLS})
		base := []string{"netns", "exec", cliNS, swaks, "--server", "10.200.45.1:2525", "--from", "app@example.com", "--to", "user@example.org", "--helo", "swaks.test", "--timeout", "20"}
		out, err := exec.Command("ip", base...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "<** 530 5.7.0") {
			t.Fatalf("swaks without AUTH: err %v\n%s", err, out)
		}
		// AUTH over plaintext from outside: not even offered.
		out, err = exec.Command("ip", append(base, "--auth", "PLAIN", "--auth-user", "app", "--auth-password", "app pw")...).CombinedOutput()
		if err == nil || strings.Contains(string(out), "235") || strings.Contains(string(out), "queued as") {
			t.Fatalf("swaks AUTH over plaintext: err %v\n%s", err, out)
		}
		if len(k.all()) != 0 {
			t.Fatal("relayed without AUTH")
		}
		if sup, _ := exec.Command(swaks, "--support").CombinedOutput(); !strings.Contains(string(sup), "=== TLS supported") {
			t.Skip("swaks lacks TLS (Debian libnet-ssleay-perl); the go client case above covers STARTTLS+AUTH")
		}
		out, err = exec.Command("ip", append(base, "--tls", "--auth", "PLAIN", "--auth-user", "app", "--auth-password", "app pw")...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "<~  250 2.0.0 Ok: queued as") {
			t.Fatalf("swaks with STARTTLS and AUTH: err %v\n%s", err, out)
		}
		if len(k.all()) != 1 {
			t.Fatalf("%d messages", len(k.all()))
		}
	})
}
