package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"},
		{Key: "vcs.time", Value: "2026-12-03T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
		{Key: "CGO_ENABLED", Value: "0"},
	}
	tests := []struct {
		name    string
		stamped string
		bi      *debug.BuildInfo
		ok      bool
		version string
	}{
		{"stamped wins", "1.2.3", &debug.BuildInfo{Main: debug.Module{Version: "v0.9.0"}, Settings: vcs}, true, "1.2.3"},
		{"module version", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.9.0"}}, true, "v0.9.0"},
		{"devel with vcs", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs}, true, "devel-0123456789ab-dirty"},
		{"devel clean", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs[:2]}, true, "devel-0123456789ab"},
		{"no build info", "", nil, false, "devel"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := fromBuildInfo(tc.stamped, tc.bi, tc.ok)
			if in.Version != tc.version {
				t.Fatalf("Version = %q, want %q", in.Version, tc.version)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	in := fromBuildInfo("1.2.3", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.time", Value: "2026-12-03T10:00:00Z"},
		{Key: "vcs.modified", Value: "false"}, {Key: "CGO_ENABLED", Value: "0"}, {Key: "-ldflags", Value: "-X secret"},
	}}, true)
	var b strings.Builder
	in.Write(&b, "relayq")
	out := b.String()
	for _, want := range []string{"relayq 1.2.3\n", "go: go1.26.8\n", "revision: abc\n", "commit time: 2026-12-03T10:00:00Z\n", "modified: false\n", "build CGO_ENABLED: 0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ldflags") {
		t.Errorf("output shows -ldflags:\n%s", out)
	}
}
