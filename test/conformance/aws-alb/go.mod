module lb-probe-webhook.test/conformance/aws-alb

go 1.24.11

// v0.0.0-20260109171550-3b9bdb1e3fb2 is the tag v2.17.1: the module path has no /v2, so Go names it by commit.
require sigs.k8s.io/aws-load-balancer-controller v0.0.0-20260109171550-3b9bdb1e3fb2
