// Command azure-probes prints the load-balancing rules and health probes that cloud-provider-azure's own
// (*Cloud).getExpectedLBRules (sigs.k8s.io/cloud-provider-azure pkg/provider) builds for each Service it reads.
//
// Input on stdin: a JSON array of {"name", "service" (a core/v1 Service), "sku", "probeMode"}.
// Output on stdout: a JSON array of {"name", "rules": [{"port", "protocol", "probe"}], "error"}.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	v1 "k8s.io/api/core/v1"

	"sigs.k8s.io/cloud-provider-azure/pkg/consts"
	"sigs.k8s.io/cloud-provider-azure/pkg/provider"
	azureconfig "sigs.k8s.io/cloud-provider-azure/pkg/provider/config"
)

type input struct {
	Name      string     `json:"name"`
	Service   v1.Service `json:"service"`
	SKU       string     `json:"sku"`
	ProbeMode string     `json:"probeMode"`
}

type probe struct {
	Protocol string `json:"protocol"`
	Port     int32  `json:"port"`
	Path     string `json:"path,omitempty"`
}

type rule struct {
	Port     int32  `json:"port"`
	Protocol string `json:"protocol"`
	Probe    *probe `json:"probe"`
}

type output struct {
	Name  string `json:"name"`
	Rules []rule `json:"rules"`
	Error string `json:"error,omitempty"`
}

const (
	subscription = "00000000-0000-0000-0000-000000000000"
	group        = "rg"
	lbName       = "kubernetes"
	frontendID   = "/subscriptions/" + subscription + "/resourceGroups/" + group + "/providers/Microsoft.Network/loadBalancers/" + lbName + "/frontendIPConfigurations/fe"
	backendID    = "/subscriptions/" + subscription + "/resourceGroups/" + group + "/providers/Microsoft.Network/loadBalancers/" + lbName + "/backendAddressPools/" + lbName
)

func main() {
	var cases []input
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintf(os.Stderr, "azure-probes: reading stdin: %v\n", err)
		os.Exit(2)
	}
	results := make([]output, 0, len(cases))
	for i := range cases {
		results = append(results, run(&cases[i]))
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(results); err != nil {
		fmt.Fprintf(os.Stderr, "azure-probes: writing stdout: %v\n", err)
		os.Exit(1)
	}
}

func run(c *input) output {
	cfg := azureconfig.Config{}
	cfg.SubscriptionID = subscription
	cfg.ResourceGroup = group
	cfg.LoadBalancerSKU = c.SKU
	cfg.ClusterServiceLoadBalancerHealthProbeMode = c.ProbeMode
	// The defaults that NewCloud's config initialisation fills in (pkg/provider/azure.go).
	cfg.ClusterServiceSharedLoadBalancerHealthProbePort = consts.ClusterServiceLoadBalancerHealthProbeDefaultPort
	cfg.ClusterServiceSharedLoadBalancerHealthProbePath = consts.ClusterServiceLoadBalancerHealthProbeDefaultPath

	out := output{Name: c.Name, Rules: []rule{}}
	probes, rules, err := provider.ConformanceExpectedLBRules(cfg, &c.Service, frontendID, backendID, lbName)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	byName := map[string]probe{}
	for _, p := range probes {
		if p == nil || p.Name == nil || p.Properties == nil {
			continue
		}
		pr := probe{}
		if p.Properties.Protocol != nil {
			pr.Protocol = string(*p.Properties.Protocol)
		}
		if p.Properties.Port != nil {
			pr.Port = *p.Properties.Port
		}
		if p.Properties.RequestPath != nil {
			pr.Path = *p.Properties.RequestPath
		}
		byName[*p.Name] = pr
	}
	for _, r := range rules {
		if r == nil || r.Properties == nil {
			continue
		}
		out1 := rule{}
		if r.Properties.FrontendPort != nil {
			out1.Port = *r.Properties.FrontendPort
		}
		if r.Properties.Protocol != nil {
			out1.Protocol = string(*r.Properties.Protocol)
		}
		if r.Properties.Probe != nil && r.Properties.Probe.ID != nil {
			id := *r.Properties.Probe.ID
			name := id[strings.LastIndex(id, "/")+1:]
			if p, ok := byName[name]; ok {
				out1.Probe = &p
			} else {
				out.Error = fmt.Sprintf("rule for port %d refers to probe %q that was not built", out1.Port, name)
			}
		}
		out.Rules = append(out.Rules, out1)
	}
	return out
}
