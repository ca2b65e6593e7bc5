package main

import (
	"flag"
	"fmt"
	"runtime"
	"time"

	"github.com/relatedhq/related/server"
)

// perfConfig is serve's performance flags: compiled plans and admission
// control.
type perfConfig struct {
	plans     bool
	admission server.Admission
}

func (p *perfConfig) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.BoolVar(&p.plans, "compiled-plans", getenv("RELATED_COMPILED_PLANS") != "false",
		"answer registered operations (operation.OpenInteraction) with their compiled plans instead of gqlgen's execution: the same answers for a fraction of the CPU (env RELATED_COMPILED_PLANS=false turns them off)")
	fs.IntVar(&p.admission.Concurrency, "max-concurrent", 0,
		"most GraphQL requests (GET and POST) running at once; 0: 2 per core on the embedded database, 16 per core on MongoDB (its requests wait on the network); negative: no limit")
	fs.IntVar(&p.admission.Queue, "admission-queue", 0,
		"most GraphQL requests waiting for one of --max-concurrent to finish, beyond which requests are refused at once with 503 UNAVAILABLE and Retry-After; 0: 8 per core; negative: none wait")
	fs.DurationVar(&p.admission.QueueWait, "admission-wait", server.DefaultQueueWait,
		"longest a request waits in the admission queue before it is refused (503 UNAVAILABLE)")
}

// check validates the flags.
func (p *perfConfig) check() error {
	if p.admission.QueueWait <= 0 || p.admission.QueueWait > time.Minute {
		return fmt.Errorf("--admission-wait %s: want more than 0 and at most a minute", p.admission.QueueWait)
	}
	return nil
}

// options applies the flags to the server's options. remote is whether
// the database is across a network (MongoDB): a request then spends most
// of its time waiting for replies rather than on a core, so more of them
// run at once before the cores are the limit.
func (p *perfConfig) options(o *server.Options, remote bool) {
	o.NoPlans = !p.plans
	o.Admission = p.admission
	if remote && o.Admission.Concurrency == 0 {
		o.Admission.Concurrency = remoteConcurrencyPerCore * runtime.GOMAXPROCS(0)
	}
}

// remoteConcurrencyPerCore is the default of --max-concurrent per core on
// MongoDB: a panel there is a few round trips of about a millisecond each
// for a fraction of a millisecond of CPU, so some eight times the embedded
// database's 2 keep the cores busy.
const remoteConcurrencyPerCore = 16
