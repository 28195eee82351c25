"""The mesh's install for a real Kubernetes cluster, generated: `istioctl manifest generate`.

charts/ holds the objects as Go templates over `values.yaml` (rendered by pkg/gotemplate,
as Helm renders Istio's charts); the CRDs come from the kind registry (pkg/config/kinds.yaml)
with their schemas from the protos (pkg/config/openapi.py); the mesh and injector ConfigMaps
are built from MeshConfig and the injection template. generate.py puts them together.
"""
