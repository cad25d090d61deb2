// Command aws-probes prints the NLB target-group health check that the AWS Load Balancer Controller's own model
// builder (sigs.k8s.io/aws-load-balancer-controller pkg/service) derives for each Service it reads.
//
// Input on stdin: a JSON array of {"name", "service" (a core/v1 Service), "defaultTargetType"}.
// Output on stdout: a JSON array of {"name", "supported", "ports": [{"port", "targetType", "healthCheck", "error"}]}.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"

	"sigs.k8s.io/aws-load-balancer-controller/pkg/service"
)

type input struct {
	Name              string         `json:"name"`
	Service           corev1.Service `json:"service"`
	DefaultTargetType string         `json:"defaultTargetType"`
}

type healthCheck struct {
	Protocol string `json:"protocol"`
	Port     string `json:"port"`
	Path     string `json:"path,omitempty"`
}

type portResult struct {
	Port        int32        `json:"port"`
	TargetType  string       `json:"targetType,omitempty"`
	HealthCheck *healthCheck `json:"healthCheck,omitempty"`
	Error       string       `json:"error,omitempty"`
}

type output struct {
	Name      string       `json:"name"`
	Supported bool         `json:"supported"`
	Ports     []portResult `json:"ports"`
}

func main() {
	var cases []input
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintf(os.Stderr, "aws-probes: reading stdin: %v\n", err)
		os.Exit(2)
	}
	results := make([]output, 0, len(cases))
	for i := range cases {
		c := &cases[i]
		svc := &c.Service
		out := output{Name: c.Name, Supported: service.ConformanceServiceSupported(svc), Ports: []portResult{}}
		for _, port := range svc.Spec.Ports {
			r := portResult{Port: port.Port}
			targetType, hc, err := service.ConformanceHealthCheck(svc, port, c.DefaultTargetType)
			if err != nil {
				r.Error = err.Error()
			} else {
				r.TargetType = string(targetType)
				r.HealthCheck = &healthCheck{Protocol: string(hc.Protocol), Port: hc.Port.String()}
				if hc.Path != nil {
					r.HealthCheck.Path = *hc.Path
				}
			}
			out.Ports = append(out.Ports, r)
		}
		results = append(results, out)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(results); err != nil {
		fmt.Fprintf(os.Stderr, "aws-probes: writing stdout: %v\n", err)
		os.Exit(1)
	}
}
