// This file is copied into aws-load-balancer-controller's pkg/service by test/conformance/build.sh.
// It only re-exports unexported methods; it changes no behaviour.

package service

import (
	"context"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"sigs.k8s.io/aws-load-balancer-controller/pkg/annotations"
	"sigs.k8s.io/aws-load-balancer-controller/pkg/config"
	elbv2model "sigs.k8s.io/aws-load-balancer-controller/pkg/model/elbv2"
	"sigs.k8s.io/aws-load-balancer-controller/pkg/shared_constants"
)

// conformanceAnnotationPrefix and conformanceLoadBalancerClass are the controller's own (controllers/service/service_controller.go,
// pkg/config/service_config.go defaults).
const (
	conformanceAnnotationPrefix  = "service.beta.kubernetes.io"
	conformanceLoadBalancerClass = "service.k8s.aws/nlb"
)

// ConformanceHealthCheck returns the target type and the target group health check that the NLB model builder
// (buildTargetType, buildTargetGroupHealthCheckConfig) derives for one port of service, with the health-check
// defaults that (*defaultModelBuilder).Build sets and the controller flag --default-target-type=defaultTargetType.
func ConformanceHealthCheck(service *corev1.Service, port corev1.ServicePort, defaultTargetType string) (elbv2model.TargetType, *elbv2model.TargetGroupHealthCheckConfig, error) {
	featureGates := config.NewFeatureGates()
	t := &defaultModelBuildTask{
		annotationParser:   annotations.NewSuffixAnnotationParser(conformanceAnnotationPrefix),
		featureGates:       featureGates,
		enableIPTargetType: featureGates.Enabled(config.EnableIPTargetType),
		service:            service,
		defaultTargetType:  elbv2model.TargetType(defaultTargetType),

		defaultHealthCheckProtocol:           elbv2model.ProtocolTCP,
		defaultHealthCheckPort:               shared_constants.HealthCheckPortTrafficPort,
		defaultHealthCheckPath:               "/",
		defaultHealthCheckInterval:           10,
		defaultHealthCheckTimeout:            10,
		defaultHealthCheckHealthyThreshold:   3,
		defaultHealthCheckUnhealthyThreshold: 3,
		defaultHealthCheckMatcherHTTPCode:    "200-399",

		defaultHealthCheckPortForInstanceModeLocal:               strconv.Itoa(int(service.Spec.HealthCheckNodePort)),
		defaultHealthCheckProtocolForInstanceModeLocal:           elbv2model.ProtocolHTTP,
		defaultHealthCheckPathForInstanceModeLocal:               "/healthz",
		defaultHealthCheckIntervalForInstanceModeLocal:           10,
		defaultHealthCheckTimeoutForInstanceModeLocal:            6,
		defaultHealthCheckHealthyThresholdForInstanceModeLocal:   2,
		defaultHealthCheckUnhealthyThresholdForInstanceModeLocal: 2,
	}
	ctx := context.Background()
	targetType, err := t.buildTargetType(ctx, service, service.Annotations, port)
	if err != nil {
		return "", nil, err
	}
	hc, err := t.buildTargetGroupHealthCheckConfig(ctx, service, service.Annotations, targetType)
	return targetType, hc, err
}

// ConformanceServiceSupported reports whether the controller, with its default --load-balancer-class, reconciles service.
func ConformanceServiceSupported(service *corev1.Service) bool {
	featureGates := config.NewFeatureGates()
	utils := NewServiceUtils(annotations.NewSuffixAnnotationParser(conformanceAnnotationPrefix), shared_constants.ServiceFinalizer, conformanceLoadBalancerClass, featureGates)
	return utils.IsServiceSupported(service)
}
