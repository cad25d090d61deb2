// This file is copied into aws-load-balancer-controller's pkg/ingress by test/conformance/build.sh.
// It only re-exports unexported methods; it changes no behaviour.

package ingress

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"sigs.k8s.io/aws-load-balancer-controller/pkg/algorithm"
	"sigs.k8s.io/aws-load-balancer-controller/pkg/annotations"
	elbv2model "sigs.k8s.io/aws-load-balancer-controller/pkg/model/elbv2"
)

// conformanceIngressAnnotationPrefix is the prefix of every ALB annotation, the controller's default
// (pkg/annotations/constants.go, AnnotationPrefixIngress).
const conformanceIngressAnnotationPrefix = "alb.ingress.kubernetes.io"

// ConformanceALBHealthCheck returns the target type and the target group health check that the Ingress model
// builder (buildTargetGroupTargetType, buildTargetGroupHealthCheckConfig) derives for an HTTP target group whose
// backend is service, behind an Ingress with ingressAnnotations, with the defaults (*defaultModelBuilder).Build sets
// and the controller's default target type, instance. The Service's annotations win over the Ingress's, as in
// buildTargetGroupSpec.
func ConformanceALBHealthCheck(service *corev1.Service, ingressAnnotations map[string]string) (elbv2model.TargetType, elbv2model.TargetGroupHealthCheckConfig, error) {
	t := &defaultModelBuildTask{
		annotationParser:   annotations.NewSuffixAnnotationParser(conformanceIngressAnnotationPrefix),
		enableIPTargetType: true,
		defaultTargetType:  elbv2model.TargetTypeInstance,

		defaultHealthCheckPathHTTP:                "/",
		defaultHealthCheckIntervalSeconds:         15,
		defaultHealthCheckTimeoutSeconds:          5,
		defaultHealthCheckHealthyThresholdCount:   2,
		defaultHealthCheckUnhealthyThresholdCount: 2,
		defaultHealthCheckMatcherHTTPCode:         "200",
	}
	ctx := context.Background()
	svcAndIngAnnotations := algorithm.MergeStringMap(service.Annotations, ingressAnnotations)
	targetType, err := t.buildTargetGroupTargetType(ctx, svcAndIngAnnotations, ClassConfiguration{})
	if err != nil {
		return "", elbv2model.TargetGroupHealthCheckConfig{}, err
	}
	hc, err := t.buildTargetGroupHealthCheckConfig(ctx, service, svcAndIngAnnotations, targetType, elbv2model.ProtocolHTTP, elbv2model.ProtocolVersionHTTP1)
	return targetType, hc, err
}
