// Command ociimage writes relayq's container image as an OCI image layout
// archive (dist/relayq-image.tar) from binaries already built, without a
// container engine and without a base image: one layer holding the static
// binaries, the CA bundle, /etc/passwd and /etc/group with the non-root
// user 65532 (relayq), and the spool and socket directories owned by it.
// scripts/package runs it. Standard library only, in its own module, so
// that the main module gains nothing.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

// uid and gid of the image's user (distroless' "nonroot").
const uid, gid = 65532, 65532

type entry struct {
	name   string
	mode   int64
	uid    int
	data   []byte
	link   string // symlink target
	isDir  bool
	source string // file to read data from
}

func main() {
	out := flag.String("out", "dist/relayq-image.tar", "the OCI archive to write")
	relayq := flag.String("relayq", "", "the static relayq binary")
	sendmail := flag.String("sendmail", "", "the static small sendmail binary (cmd/sendmail)")
	cacerts := flag.String("cacerts", "/etc/ssl/certs/ca-certificates.crt", "the CA bundle")
	version := flag.String("version", "dev", "image version (tag)")
	flag.Parse()
	if err := run(*out, *relayq, *sendmail, *cacerts, *version); err != nil {
		fmt.Fprintf(os.Stderr, "ociimage: %v\n", err)
		os.Exit(1)
	}
}

// imageTag is version as an image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}):
// Debian's '~' and '+' (0.0.0~git….abc, 1.0+dirty) become '-', which
// podman, skopeo and docker accept in a reference.
func imageTag(version string) string {
	b := []byte(version)
	for i, c := range b {
		ok := c == '_' || c == '.' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		switch {
		case i == 0 && (!ok || c == '.' || c == '-'):
			b[i] = '_'
		case !ok:
			b[i] = '-'
		}
	}
	if len(b) > 128 {
		b = b[:128]
	}
	if len(b) == 0 {
		return "latest"
	}
	return string(b)
}

func run(out, relayq, sendmail, cacerts, version string) error {
	if relayq == "" || sendmail == "" {
		return fmt.Errorf("-relayq and -sendmail are required")
	}
	entries := []entry{
		{name: "etc/", isDir: true, mode: 0o755},
		{name: "etc/relayq/", isDir: true, mode: 0o755},
		{name: "etc/relayq/relayq.env", mode: 0o644, data: []byte("# relayq.env(5): settings come from the container's environment\n# (RELAYQ_*); mount a file here to use one instead.\n")},
		{name: "etc/ssl/", isDir: true, mode: 0o755},
		{name: "etc/ssl/certs/", isDir: true, mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, source: cacerts},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nrelayq:x:65532:65532:relayq:/var/spool/relayq:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nrelayq:x:65532:\n")},
		{name: "usr/", isDir: true, mode: 0o755},
		{name: "usr/bin/", isDir: true, mode: 0o755},
		{name: "usr/sbin/", isDir: true, mode: 0o755},
		{name: "usr/lib/", isDir: true, mode: 0o755},
		{name: "usr/sbin/relayq", mode: 0o755, source: relayq},
		{name: "usr/sbin/relayq-sendmail", mode: 0o755, source: sendmail},
		{name: "usr/sbin/sendmail", link: "relayq-sendmail"},
		{name: "usr/bin/relayq", link: "../sbin/relayq"},
		{name: "usr/bin/mailq", link: "../sbin/relayq-sendmail"},
		{name: "usr/bin/newaliases", link: "../sbin/relayq-sendmail"},
		{name: "usr/lib/sendmail", link: "../sbin/relayq-sendmail"},
		{name: "var/", isDir: true, mode: 0o755},
		{name: "var/spool/", isDir: true, mode: 0o755},
		{name: "var/spool/relayq/", isDir: true, mode: 0o700, uid: uid},
		{name: "run/", isDir: true, mode: 0o755},
		{name: "run/relayq/", isDir: true, mode: 0o755, uid: uid},
		{name: "tmp/", isDir: true, mode: 0o1777},
	}
	layer, err := layerTar(entries)
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(layer)
	if err := zw.Close(); err != nil {
		return err
	}
	config := map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      "1970-01-01T00:00:00Z",
		"config": map[string]any{
			"User":       fmt.Sprintf("%d:%d", uid, gid),
			"Entrypoint": []string{"/usr/sbin/relayq", "serve"},
			"WorkingDir": "/var/spool/relayq",
			"Env": []string{
				"PATH=/usr/sbin:/usr/bin",
				"RELAYQ_CONFIG=/etc/relayq/relayq.env",
				"RELAYQ_SPOOL=/var/spool/relayq/queue.db",
				"RELAYQ_AUTHINFO=/etc/relayq/authinfo",
				// Loopback only: in a pod the sidecar's loopback is the
				// application's too.
				"RELAYQ_LISTEN=127.0.0.1:2525",
				"RELAYQ_LOG_FORMAT=json",
				"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
			},
			"Volumes": map[string]any{"/var/spool/relayq": map[string]any{}},
			"Labels": map[string]string{
				"org.opencontainers.image.title":   "relayq",
				"org.opencontainers.image.version": version,
				"org.opencontainers.image.source":  "https://github.com/relayq/relayq",
				"healthcheck":                      "relayq healthcheck",
			},
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{digest(layer)}},
		"history": []map[string]any{{"created": "1970-01-01T00:00:00Z", "created_by": "relayq scripts/package (tools/ociimage)"}},
	}
	cfg, _ := json.Marshal(config)
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        desc("application/vnd.oci.image.config.v1+json", cfg, nil),
		"layers":        []any{desc("application/vnd.oci.image.layer.v1.tar+gzip", gz.Bytes(), nil)},
	})
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []any{desc("application/vnd.oci.image.manifest.v1+json", manifest,
			map[string]string{"org.opencontainers.image.ref.name": "relayq:" + imageTag(version)})},
	})
	var files []entry
	files = append(files, entry{name: "oci-layout", mode: 0o644, data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		entry{name: "index.json", mode: 0o644, data: index},
		entry{name: "blobs/", isDir: true, mode: 0o755},
		entry{name: "blobs/sha256/", isDir: true, mode: 0o755})
	for _, b := range [][]byte{cfg, manifest, gz.Bytes()} {
		files = append(files, entry{name: "blobs/sha256/" + digest(b)[len("sha256:"):], mode: 0o644, data: b})
	}
	archive, err := layerTar(files)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, archive, 0o644); err != nil {
		return err
	}
	fmt.Printf("ociimage: %s: %d bytes (layer %d bytes compressed, %d uncompressed), ref %s\n",
		out, len(archive), gz.Len(), len(layer), version)
	return nil
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func desc(mediaType string, b []byte, annotations map[string]string) map[string]any {
	d := map[string]any{"mediaType": mediaType, "digest": digest(b), "size": len(b)}
	if annotations != nil {
		d["annotations"] = annotations
	}
	return d
}

// layerTar writes entries as a tar, owners numeric, times fixed (the
// same inputs give the same bytes).
func layerTar(entries []entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: mtime, Format: tar.FormatPAX}
		switch {
		case e.isDir:
			h.Typeflag = tar.TypeDir
		case e.link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.link, 0o777
		default:
			data := e.data
			if e.source != "" {
				var err error
				if data, err = os.ReadFile(e.source); err != nil {
					return nil, err
				}
			}
			h.Typeflag, h.Size = tar.TypeReg, int64(len(data))
			e.data = data
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
