package config

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkLoad is the configuration cost every sendmail call pays: an env
// file of a dozen keys plus a few RELAYQ_* variables in the environment.
// Run: go test -run - -bench Load ./config
func BenchmarkLoad(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "relayq.env")
	content := `# relayq
RELAYQ_RELAYHOST=[smtp.example.com]:587
RELAYQ_AUTHINFO=/etc/relayq/authinfo
RELAYQ_TLS=verify
RELAYQ_SPOOL=/var/spool/relayq/queue.db
RELAYQ_DOMAIN=example.com
RELAYQ_LOG_LEVEL=info
RELAYQ_LOCK_TIMEOUT=5s
RELAYQ_MAILQ_PUBLIC=true
export RELAYQ_LOG_FORMAT="text"
RELAYQ_ALIASES=/etc/aliases
`
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		b.Fatal(err)
	}
	environ := append(os.Environ(), "RELAYQ_CONFIG="+path, "RELAYQ_LOG_LEVEL=debug")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadEnviron(environ); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadCold is BenchmarkLoad with the per-type tag cache emptied
// before each load: what one sendmail process pays (it loads once).
func BenchmarkLoadCold(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "relayq.env")
	if err := os.WriteFile(path, []byte("RELAYQ_RELAYHOST=[smtp.example.com]:587\nRELAYQ_DOMAIN=example.com\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	environ := append(os.Environ(), "RELAYQ_CONFIG="+path)
	b.ReportAllocs()
	for b.Loop() {
		infoCache.Clear()
		convCache.Clear()
		if _, err := LoadEnviron(environ); err != nil {
			b.Fatal(err)
		}
	}
}
