module lb-probe-webhook.test/conformance/azure

go 1.24.6

require sigs.k8s.io/cloud-provider-azure v1.34.3
