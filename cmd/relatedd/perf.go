package main

import (
	"flag"

	"github.com/relatedhq/related/server"
)

// perfConfig is serve's performance flags: compiled plans and admission
// control.
type perfConfig struct {
	plans bool
}

func (p *perfConfig) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.BoolVar(&p.plans, "compiled-plans", getenv("RELATED_COMPILED_PLANS") != "false",
		"answer registered operations (operation.OpenInteraction) with their compiled plans instead of gqlgen's execution; the same answers, a third of the CPU (env RELATED_COMPILED_PLANS=false turns them off)")
}

// options applies the flags to the server's options.
func (p *perfConfig) options(o *server.Options) {
	o.NoPlans = !p.plans
}
