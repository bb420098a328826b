package daemon

import "testing"

type namedReloader struct{}

func (namedReloader) Reload() error  { return nil }
func (namedReloader) String() string { return "the users file" }

type plainReloader struct{}

func (plainReloader) Reload() error { return nil }

// TestReloaderName: the SIGHUP log lines name what was reloaded (the
// reloader's String), falling back to the Go type only for a reloader
// without one.
func TestReloaderName(t *testing.T) {
	for _, tc := range []struct {
		rl   Reloader
		want string
	}{
		{namedReloader{}, "the users file"},
		{plainReloader{}, "daemon.plainReloader"},
	} {
		if got := reloaderName(tc.rl); got != tc.want {
			t.Errorf("reloaderName(%T) = %q, want %q", tc.rl, got, tc.want)
		}
	}
}
