// Package kubernetes holds no code: its test decodes the example
// manifests strictly against the Kubernetes API types (an unknown or
// misspelt field fails) and checks what relayq needs from them. It is a
// module of its own so that relayq's module gains no Kubernetes
// dependency; scripts/test runs it.
package kubernetes

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// docs splits a multi-document YAML file.
func docs(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			out = append(out, d)
		}
	}
	return out
}

// relayqKeys are the RELAYQ_* keys relayq knows (its config struct tags).
func relayqKeys(t *testing.T) map[string]bool {
	t.Helper()
	files, _ := filepath.Glob("../../config/*.go")
	re := regexp.MustCompile(`envconfig:"([A-Z0-9_]+)"`)
	keys := map[string]bool{}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, m := range re.FindAllSubmatch(b, -1) {
			keys["RELAYQ_"+string(m[1])] = true
		}
	}
	if len(keys) < 50 {
		t.Fatalf("found only %d RELAYQ_ keys in ../../config", len(keys))
	}
	return keys
}

// relayqCommand reports whether relayq has the subcommand (its commands
// table in cmd/relayq/main.go).
func relayqCommand(t *testing.T, name string) bool {
	b, err := os.ReadFile("../../cmd/relayq/main.go")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(`"`+name+`":`))
}

func TestSidecarManifests(t *testing.T) {
	var dep *appsv1.Deployment
	var secret *corev1.Secret
	var pvc *corev1.PersistentVolumeClaim
	for i, d := range docs(t, "sidecar.yaml") {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(d, &tm); err != nil {
			t.Fatalf("document %d: %v", i+1, err)
		}
		var obj any
		switch tm.Kind {
		case "Deployment":
			dep = &appsv1.Deployment{}
			obj = dep
		case "Secret":
			secret = &corev1.Secret{}
			obj = secret
		case "PersistentVolumeClaim":
			pvc = &corev1.PersistentVolumeClaim{}
			obj = pvc
		default:
			t.Fatalf("document %d: unexpected kind %q", i+1, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(d, obj); err != nil {
			t.Fatalf("document %d (%s): %v", i+1, tm.Kind, err)
		}
	}
	if dep == nil || secret == nil || pvc == nil {
		t.Fatal("want a Deployment, a Secret and a PersistentVolumeClaim")
	}
	pod := dep.Spec.Template.Spec
	if len(pod.InitContainers) != 1 {
		t.Fatalf("%d init containers, want the relayq sidecar", len(pod.InitContainers))
	}
	rq := pod.InitContainers[0]
	if rq.RestartPolicy == nil || *rq.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Error("relayq is not a native sidecar (init container with restartPolicy: Always)")
	}

	keys := relayqKeys(t)
	env := map[string]string{}
	for _, e := range rq.Env {
		if strings.HasPrefix(e.Name, "RELAYQ_") && !keys[e.Name] {
			t.Errorf("env %s is not a relayq key", e.Name)
		}
		env[e.Name] = e.Value
	}
	drain, err1 := time.ParseDuration(env["RELAYQ_DRAIN_ON_STOP"])
	cut, err2 := time.ParseDuration(env["RELAYQ_DRAIN_TIMEOUT"])
	if err1 != nil || err2 != nil || drain <= 0 {
		t.Fatalf("RELAYQ_DRAIN_ON_STOP %q, RELAYQ_DRAIN_TIMEOUT %q: want both set", env["RELAYQ_DRAIN_ON_STOP"], env["RELAYQ_DRAIN_TIMEOUT"])
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drain+cut {
		t.Errorf("terminationGracePeriodSeconds must exceed drain on stop + drain timeout (%s)", drain+cut)
	}

	for what, p := range map[string]*corev1.Probe{"startup": rq.StartupProbe, "readiness": rq.ReadinessProbe, "liveness": rq.LivenessProbe} {
		if p == nil || p.Exec == nil || len(p.Exec.Command) < 2 || p.Exec.Command[0] != "relayq" || !relayqCommand(t, p.Exec.Command[1]) {
			t.Errorf("%s probe: want exec of a relayq subcommand, got %+v", what, p)
		}
	}

	sc := pod.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 ||
		sc.FSGroup == nil || sc.RunAsGroup == nil || *sc.FSGroup != *sc.RunAsGroup ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext: want non-root, fsGroup = runAsGroup (the Secret's files readable by relayq's group), seccomp RuntimeDefault: %+v", sc)
	}
	for _, c := range append([]corev1.Container{rq}, pod.Containers...) {
		s := c.SecurityContext
		if s == nil || s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation || s.ReadOnlyRootFilesystem == nil ||
			!*s.ReadOnlyRootFilesystem || s.Capabilities == nil || len(s.Capabilities.Drop) != 1 || s.Capabilities.Drop[0] != "ALL" {
			t.Errorf("container %s: want no privilege escalation, a read-only root, all capabilities dropped", c.Name)
		}
	}

	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	mounts := map[string]string{}
	for _, m := range rq.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	if v := vols[mounts["/var/spool/relayq"]]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != pvc.Name {
		t.Error("the spool is not on the PersistentVolumeClaim (queued mail would die with the pod)")
	}
	if v := vols[mounts["/run/relayq"]]; v.EmptyDir == nil {
		t.Error("/run/relayq (sockets) is not a writable emptyDir under a read-only root")
	}
	cred := env["RELAYQ_AUTHINFO"]
	v := vols[mounts[filepath.Dir(cred)]]
	if v.Secret == nil || v.Secret.SecretName != secret.Name {
		t.Fatalf("RELAYQ_AUTHINFO %s is not in the Secret's volume", cred)
	}
	// relayq refuses a credentials file others may read; kubelet makes the
	// files root:fsGroup: 0440 or 0400, never other bits.
	if m := v.Secret.DefaultMode; m == nil || *m&0o037 != 0 {
		t.Errorf("Secret defaultMode %o: relayq refuses a group-writable or world-accessible credentials file", *m)
	}
	if _, ok := secret.StringData[filepath.Base(cred)]; !ok {
		t.Errorf("the Secret has no key %s", filepath.Base(cred))
	}
}
