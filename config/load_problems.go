package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Problem is a configuration value that Load could not use (a bad value,
// or a line of the env file with a syntax error) in a key that submission
// does not need: Load does not fail, the key keeps its default, and
// delivery waits until it is fixed (Config.DeliveryProblem). A bad value
// in a key that submission needs (RefusesBadValue) is an error instead.
type Problem struct {
	Key    string // the key; "" when a skipped env file line named none
	Source string // where the value came from: "file:line", "environment", …
	Err    error  // what is wrong; never quotes a secret value
}

// Error is the problem with where it is: "file:line: KEY: what".
func (p Problem) Error() string { return located(p.Source, p.Err.Error()) }

// located prefixes msg with src when src is a file line (or the
// environment) that msg does not name yet.
func located(src, msg string) string {
	switch {
	case src == "" || src == SourceDefault || src == SourceUnset || strings.Contains(msg, src):
		return msg
	case src == SourceEnvironment:
		return "environment: " + msg
	}
	return src + ": " + msg
}

// submissionKeys are the keys that queueing a message needs or that
// decide what is stored: where (the spool, the daemon's socket, the lock
// wait), what is accepted (the size and header limits, the hop count) and
// how the envelope and headers are written (domain, aliases, sender
// rewriting, who may set the sender). A bad value there refuses the
// message (exit 78 naming file, line and key) rather than storing it
// somewhere else or differently from what the operator wrote.
var submissionKeys = map[string]bool{
	Prefix + "_CONFIG": true, Prefix + "_SPOOL": true, Prefix + "_SOCKET": true, Prefix + "_LOCK_TIMEOUT": true,
	Prefix + "_SMTPD_MESSAGE_SIZE_LIMIT": true, Prefix + "_DOMAIN": true, Prefix + "_ALIASES": true,
	Prefix + "_TRUSTED_USERS": true, Prefix + "_UNTRUSTED_SENDER": true, Prefix + "_GENERIC_MAP": true,
	Prefix + "_SENDER_REWRITE": true, Prefix + "_MAX_HEADER_SIZE": true, Prefix + "_HOPCOUNT_LIMIT": true,
}

// SubmissionKeys lists, sorted, the keys whose bad value refuses mail
// (RefusesBadValue).
func SubmissionKeys() []string { return slices.Sorted(maps.Keys(submissionKeys)) }

// RefusesBadValue reports whether a bad value of key makes Load fail
// (every command, sendmail included, exits 78): the keys that queueing a
// message needs. A bad value of any other key is a Problem.
func RefusesBadValue(key string) bool { return submissionKeys[key] }

// listenerKeys are the keys of the daemon's doors: RELAYQ_LISTEN, the
// Listener area, the control socket and the metrics endpoint. Built on
// first use: sendmail without problems never needs it.
var listenerKeys = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{Prefix + "_LISTEN": true, Prefix + "_CONTROL_SOCKET": true, Prefix + "_MAILQ_PUBLIC": true, Prefix + "_METRICS_LISTEN": true}
	for _, f := range fields(Prefix, &Listener{}) {
		m[f.Key] = true
	}
	return m
})

// IsListenerKey reports whether key is one of the daemon's doors, whose
// problems are ListenerProblem's.
func IsListenerKey(key string) bool { return listenerKeys()[key] }

// Problems returns the values Load could not use, in the order found.
func (c *Config) Problems() []Problem {
	if c.loaded == nil {
		return nil
	}
	return c.loaded.problems
}

// DeliveryProblem joins the problems that stop delivery: every one but
// those of the daemon's doors (ListenerProblem). Nil when there is none.
// The daemon and the delivery runs then defer every message with it as
// the reason, so that mailq shows it; `relayq check` fails with it.
func (c *Config) DeliveryProblem() error { return c.problems(false) }

// ListenerProblem joins the problems of the daemon's doors (RELAYQ_LISTEN,
// the RELAYQ_SMTPD_* and socket keys, the control socket, metrics): relayq
// serve does not start with one (a door must not open with other
// security than configured); sendmail then queues through the drop
// directory. Nil when there is none.
func (c *Config) ListenerProblem() error { return c.problems(true) }

func (c *Config) problems(listener bool) error {
	var errs []error
	for _, p := range c.Problems() {
		if listenerKeys()[p.Key] == listener {
			errs = append(errs, p)
		}
	}
	return errors.Join(errs...)
}

// resetField gives f its default (or zero) value after its own value was
// found bad, and says so in its source.
func resetField(f *field, info *loadInfo) error {
	src := info.sources[f.Key]
	if f.Default == "" {
		f.v.Set(reflect.Zero(f.v.Type()))
	} else if err := setField(f.Default, f.v); err != nil {
		return fmt.Errorf("%s: default %q: %w", f.Key, f.Default, err)
	}
	if src == "" || src == SourceDefault {
		info.sources[f.Key] = SourceDefault
	} else {
		info.sources[f.Key] = SourceDefault + " (the value from " + src + " is invalid)"
	}
	return nil
}

// keyRE finds the keys a validation error names (compiled on first use:
// only a configuration with a bad value needs it).
var keyRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(Prefix + `_[A-Z0-9_]+`) })

// validateKeys is validate with the lenient rule of Load: an error whose
// first key refuses bad values (or that names none) is returned; any
// other is recorded as a Problem of that key, and the keys it names that
// do not refuse bad values get their defaults. Then it validates again.
func (c *Config) validateKeys() error {
	info := c.loaded
	var byKey map[string]*field
	for round := 0; round < 3; round++ {
		err := c.validate()
		if err == nil {
			return nil
		}
		if byKey == nil {
			flds := fields(Prefix, c)
			byKey = make(map[string]*field, len(flds))
			for i := range flds {
				byKey[flds[i].Key] = &flds[i]
			}
		}
		var fatal []error
		for _, e := range flatten(err) {
			keys := keyRE().FindAllString(e.Error(), -1)
			if len(keys) == 0 || byKey[keys[0]] == nil || info.refuses(keys[0]) {
				src := ""
				if len(keys) > 0 {
					src = info.sources[keys[0]]
				}
				fatal = append(fatal, errors.New(located(src, e.Error())))
				continue
			}
			info.problems = append(info.problems, Problem{Key: keys[0], Source: info.sources[keys[0]], Err: e})
			for _, k := range keys {
				if f := byKey[k]; f != nil && !info.refuses(k) {
					if err := resetField(f, info); err != nil {
						fatal = append(fatal, err)
					}
				}
			}
		}
		if len(fatal) > 0 {
			return errors.Join(fatal...)
		}
	}
	return c.validate()
}

// flatten lists the errors an errors.Join holds (recursively).
func flatten(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}
