package main

import (
	"regexp"
	"testing"
)

// The ref name must be a valid image reference: podman load refused
// Debian's "0.0.0~git….abc" ("invalid reference format").
func TestImageTag(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	for in, want := range map[string]string{
		"1.0.0":                           "1.0.0",
		"0.0.0~git20261204010422.2934c28": "0.0.0-git20261204010422.2934c28",
		"1.0+dirty":                       "1.0-dirty",
		"-x":                              "_x",
		"":                                "latest",
	} {
		got := imageTag(in)
		if got != want {
			t.Errorf("imageTag(%q) = %q, want %q", in, got, want)
		}
		if !valid.MatchString(got) {
			t.Errorf("imageTag(%q) = %q: not a valid tag", in, got)
		}
	}
}
