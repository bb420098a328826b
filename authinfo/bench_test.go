package authinfo

import (
	"fmt"
	"strings"
	"testing"
)

// benchFile is a sasl_passwd file with n sender keys plus host keys.
func benchFile(n int) string {
	var b strings.Builder
	b.WriteString("[smtp.example.com]:587 relay:pw\nsmtp.example.com host:pw\n")
	for i := range n {
		fmt.Fprintf(&b, "user%d@example%d.test u%d:pw%d\n", i, i%50, i, i)
	}
	return b.String()
}

// BenchmarkLookup measures one Postfix lookup that walks all steps to the
// next hop (3 sender keys and the server name miss), in a 1000-entry map.
func BenchmarkLookup(b *testing.B) {
	m, err := Parse(strings.NewReader(benchFile(1000)), "bench")
	if err != nil {
		b.Fatal(err)
	}
	q := Query{Sender: "nobody+ext@other.test", Host: "mx.example.com", NextHop: "[smtp.example.com]:587"}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := m.Lookup(q); !ok {
			b.Fatal("no match")
		}
	}
}

// BenchmarkStoreLookup is Lookup through a Store (change check included).
func BenchmarkStoreLookup(b *testing.B) {
	dir := b.TempDir()
	p := dir + "/authinfo"
	if err := writeFileB(p, benchFile(1000)); err != nil {
		b.Fatal(err)
	}
	s, err := NewStore(p)
	if err != nil {
		b.Fatal(err)
	}
	q := Query{Sender: "user7@example7.test", Host: "mx.example.com", NextHop: "[smtp.example.com]:587"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := s.Lookup(q); !ok {
				b.Error("no match")
				return
			}
		}
	})
}

// BenchmarkParse measures parsing a 1000-entry file.
func BenchmarkParse(b *testing.B) {
	text := benchFile(1000)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(strings.NewReader(text), "bench"); err != nil {
			b.Fatal(err)
		}
	}
}
