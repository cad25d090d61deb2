// Command rulecheck loads Prometheus rule files with Prometheus's own rule loader
// (model/rulefmt: YAML shape, PromQL expressions, label names, annotation templates) and exits
// 1 when any is invalid. test/helm/build.sh builds it against a pinned Prometheus version.
package main

import (
	"fmt"
	"os"

	"github.com/prometheus/prometheus/model/rulefmt"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rulecheck FILE...")
		os.Exit(2)
	}
	failed := false
	for _, file := range os.Args[1:] {
		groups, errs := rulefmt.ParseFile(file, false)
		if len(errs) > 0 {
			failed = true
			for _, err := range errs {
				fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
			}
			continue
		}
		rules := 0
		for _, group := range groups.Groups {
			rules += len(group.Rules)
		}
		fmt.Printf("%s: %d groups, %d rules: valid\n", file, len(groups.Groups), rules)
	}
	if failed {
		os.Exit(1)
	}
}
