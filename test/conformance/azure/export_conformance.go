// This file is copied into cloud-provider-azure's pkg/provider by test/conformance/build.sh.
// It only re-exports an unexported method; it changes no behaviour.

package provider

import (
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
	v1 "k8s.io/api/core/v1"

	azureconfig "sigs.k8s.io/cloud-provider-azure/pkg/provider/config"
)

// ConformanceExpectedLBRules returns what (*Cloud).getExpectedLBRules builds for service on a Cloud with cfg.
func ConformanceExpectedLBRules(cfg azureconfig.Config, service *v1.Service, frontendIPConfigID, backendPoolID, lbName string) ([]*armnetwork.Probe, []*armnetwork.LoadBalancingRule, error) {
	az := &Cloud{Config: cfg}
	return az.getExpectedLBRules(service, frontendIPConfigID, backendPoolID, lbName, false)
}
