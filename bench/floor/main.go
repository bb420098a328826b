// Command floor is the benchmark floor for a sendmail caller's wait: a
// static binary that reads its standard input, writes one byte to a file,
// fsyncs it and exits. No real sendmail can make its caller wait less than
// starting a process plus one durable write.
package main

import (
	"io"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		os.Stderr.WriteString("usage: floor FILE < input\n")
		os.Exit(64)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	f, err := os.OpenFile(os.Args[1], os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(74)
	}
	if _, err := f.Write([]byte{'x'}); err != nil {
		os.Exit(74)
	}
	if err := f.Sync(); err != nil {
		os.Exit(74)
	}
	if err := f.Close(); err != nil {
		os.Exit(74)
	}
}
