// Command aws-alb-probes prints the ALB target group health check that the AWS Load Balancer Controller's own
// Ingress model builder (sigs.k8s.io/aws-load-balancer-controller pkg/ingress) derives for each backend Service.
//
// Input on stdin: a JSON array of {"name", "service" (a core/v1 Service), "ingressAnnotations"}.
// Output on stdout: a JSON array of {"name", "targetType", "healthCheck", "error"}.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"

	"sigs.k8s.io/aws-load-balancer-controller/pkg/ingress"
)

type input struct {
	Name               string            `json:"name"`
	Service            corev1.Service    `json:"service"`
	IngressAnnotations map[string]string `json:"ingressAnnotations"`
}

type healthCheck struct {
	Protocol string `json:"protocol"`
	Port     string `json:"port"`
	Path     string `json:"path,omitempty"`
}

type output struct {
	Name        string       `json:"name"`
	TargetType  string       `json:"targetType,omitempty"`
	HealthCheck *healthCheck `json:"healthCheck,omitempty"`
	Error       string       `json:"error,omitempty"`
}

func main() {
	var cases []input
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintf(os.Stderr, "aws-alb-probes: reading stdin: %v\n", err)
		os.Exit(2)
	}
	results := make([]output, 0, len(cases))
	for i := range cases {
		c := &cases[i]
		out := output{Name: c.Name}
		targetType, hc, err := ingress.ConformanceALBHealthCheck(&c.Service, c.IngressAnnotations)
		if err != nil {
			out.Error = err.Error()
		} else {
			out.TargetType = string(targetType)
			out.HealthCheck = &healthCheck{Protocol: string(hc.Protocol), Port: hc.Port.String()}
			if hc.Path != nil {
				out.HealthCheck.Path = *hc.Path
			}
		}
		results = append(results, out)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(results); err != nil {
		fmt.Fprintf(os.Stderr, "aws-alb-probes: writing stdout: %v\n", err)
		os.Exit(1)
	}
}
