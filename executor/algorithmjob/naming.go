// Package algorithmjob says what the algorithm job of an ExternalJob portrait may be and whom it
// runs as. A tenant who may create a HorizontalPortrait (or an IHPA with a Dynamic provider)
// writes the job's pod spec, so the spec is untrusted:
//
//   - the job runs in the portrait's own namespace, as the ServiceAccount kapacity-algorithm-job
//     of that namespace, whose RoleBinding grants the ClusterRole kapacity-algorithm-job shipped in
//     deploy/ (read the namespace's history, write its result ConfigMap) and nothing else;
//   - its pod spec passes Pod Security "restricted": the fields that profile requires are
//     defaulted when unset, explicit violations are rejected;
//   - it mounts no credential the kubelet would hand over whatever the ServiceAccount may read
//     (Secret, PersistentVolumeClaim and CSI volumes, Secret environment variables);
//   - its CronJob name is unique and valid for any portrait name.
//
// ValidateJobTemplate is pure, so the admission webhook can refuse a bad template at the door
// with the same messages the HorizontalPortrait controller reports.
package algorithmjob

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

const (
	// MaxCronJobNameLength is the API server's limit: the Job controller appends an 11-character
	// suffix, and the Job's name must stay a 63-character label value.
	MaxCronJobNameLength = 52
	// hashLength hex digits (40 bits) of sha256("<namespace>/<name>") end every CronJob name.
	hashLength = 10
)

// CronJobName is the name of the CronJob of the portrait namespace/name: the portrait's name,
// dots turned into dashes and truncated, then a dash and a hash of namespace/name. It is at most
// MaxCronJobNameLength characters, a valid DNS label, stable across restarts and versions, and
// distinct for portraits whose names share a long prefix.
func CronJobName(namespace, name string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	suffix := hex.EncodeToString(sum[:])[:hashLength]
	prefix := strings.ToLower(strings.ReplaceAll(name, ".", "-"))
	prefix = strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			return r
		}
		return '-'
	}, prefix)
	if limit := MaxCronJobNameLength - 1 - hashLength; len(prefix) > limit {
		prefix = prefix[:limit]
	}
	prefix = strings.Trim(prefix, "-")
	if prefix == "" {
		return "portrait-" + suffix
	}
	return prefix + "-" + suffix
}
