// Package buildinfo says which relayq this is: the version scripts/package
// stamps in with -ldflags, else what the Go toolchain recorded (module
// version, VCS revision, time and whether the tree was modified).
package buildinfo

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is set at link time by scripts/package:
//
//	go build -ldflags "-X github.com/relayq/relayq/internal/buildinfo.Version=1.2.3"
//
// Empty means "not stamped": Current falls back to the build information.
var Version = ""

// Info is what one binary knows about its own build.
type Info struct {
	Version   string // stamped version, else module version, else "devel"
	GoVersion string // toolchain that built the binary
	Revision  string // VCS revision, "" when not recorded
	Time      string // VCS commit time (RFC 3339), "" when not recorded
	Modified  bool   // the working tree had uncommitted changes
	Platform  string // GOOS/GOARCH
	Settings  []debug.BuildSetting
}

// Current returns the running binary's build information.
func Current() Info {
	bi, ok := debug.ReadBuildInfo()
	return fromBuildInfo(Version, bi, ok)
}

// fromBuildInfo is Current with its inputs explicit, for tests.
func fromBuildInfo(stamped string, bi *debug.BuildInfo, ok bool) Info {
	in := Info{Version: stamped, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if ok && bi != nil {
		in.GoVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Revision = s.Value
			case "vcs.time":
				in.Time = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
		in.Settings = bi.Settings
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version
		}
	}
	if in.Version == "" {
		in.Version = "devel"
		if in.Revision != "" {
			rev := in.Revision
			if len(rev) > 12 {
				rev = rev[:12]
			}
			in.Version += "-" + rev
			if in.Modified {
				in.Version += "-dirty"
			}
		}
	}
	return in
}

// Write prints the information as `relayq version` shows it: the first
// line "PROG VERSION", then one "key: value" line per fact known.
func (in Info) Write(w io.Writer, prog string) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", prog, in.Version)
	fmt.Fprintf(&b, "go: %s\nplatform: %s\n", in.GoVersion, in.Platform)
	if in.Revision != "" {
		fmt.Fprintf(&b, "revision: %s\n", in.Revision)
	}
	if in.Time != "" {
		fmt.Fprintf(&b, "commit time: %s\n", in.Time)
	}
	if in.Revision != "" {
		fmt.Fprintf(&b, "modified: %t\n", in.Modified)
	}
	for _, s := range in.Settings {
		switch s.Key {
		case "CGO_ENABLED", "-trimpath", "-tags", "GOAMD64", "GOARM", "GOARM64":
			fmt.Fprintf(&b, "build %s: %s\n", s.Key, s.Value)
		}
	}
	io.WriteString(w, b.String())
}
