package main

import (
	"fmt"
	"strings"

	"github.com/relayq/relayq/config"
)

// runConfig prints every configuration key with its description, default,
// where the current value comes from and the value (secrets masked), as an
// env file. With KEY arguments it prints just those values, one per line
// (RELAYQ_ may be left out).
func runConfig(s stdio, args []string) int {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "help" {
			fmt.Fprintln(s.out, "usage: relayq config [KEY...]\n\nPrints every RELAYQ_* key with its default and current value (secrets masked),\nas an env file; with KEYs, just their values.")
			return exOK
		}
	}
	cfg, code := loadConfig(s)
	if cfg == nil {
		return code
	}
	warnConfig(s.err, "relayq config", cfg)
	if len(args) == 0 {
		if err := cfg.Usage(s.out); err != nil {
			return exIOErr
		}
		return exOK
	}
	keys := map[string]config.Key{}
	for _, k := range cfg.Describe() {
		keys[k.Key] = k
	}
	for _, a := range args {
		name := strings.ToUpper(a)
		if !strings.HasPrefix(name, config.Prefix+"_") {
			name = config.Prefix + "_" + name
		}
		k, ok := keys[name]
		if !ok {
			fmt.Fprintf(s.err, "relayq config: unknown key %s\n", a)
			return exUsage
		}
		fmt.Fprintln(s.out, k.Value)
	}
	return exOK
}
