#!/usr/bin/env bash
# Regenerates the deepcopy functions and the CRD manifests of the v1alpha1 API with controller-gen,
# building controller-gen first from the pinned module beside this script when it is missing or stale.
#
# Usage: test/tools/codegen/generate.sh   (from anywhere; `make generate` calls it)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/../../.." && pwd)"
bin="${root}/bin"
controller_gen="${bin}/controller-gen"
crdtrim="${bin}/crdtrim"
stamp="${bin}/.controller-gen.stamp"

apis="./config/apis/..."
crd_dir="deploy/crds"

# The stamp is the hash of the pinned module files and of crdtrim's source: a version bump or an edit
# rebuilds, and nothing else does, so repeated `make generate` runs cost no compile on a busy machine.
want="$(cat "${here}/go.mod" "${here}/go.sum" "${here}"/crdtrim/*.go | sha256sum | cut -d' ' -f1)"
if [[ ! -x "${controller_gen}" || ! -x "${crdtrim}" || ! -f "${stamp}" || "$(cat "${stamp}")" != "${want}" ]]; then
	echo "building ${controller_gen#"${root}/"} and ${crdtrim#"${root}/"}" >&2
	mkdir -p "${bin}"
	(cd "${here}" && go build -trimpath -o "${controller_gen}" sigs.k8s.io/controller-tools/cmd/controller-gen)
	(cd "${here}" && go build -trimpath -o "${crdtrim}" ./crdtrim)
	echo "${want}" >"${stamp}"
fi

cd "${root}"

"${controller_gen}" object:headerFile="${here}/boilerplate.go.txt" paths="${apis}"

# Old manifests are removed first so that a renamed or deleted kind does not leave a stale CRD behind.
mkdir -p "${crd_dir}"
rm -f "${crd_dir}"/autoscaling.kapacitystack.io_*.yaml
"${controller_gen}" crd:crdVersions=v1 paths="${apis}" output:crd:artifacts:config="${crd_dir}"
# Keeps each manifest under the 256 KiB that client-side `kubectl apply` can record (see crdtrim).
"${crdtrim}" "${crd_dir}"/autoscaling.kapacitystack.io_*.yaml
