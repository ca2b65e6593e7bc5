package mongo

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestExplainQueryShapes asks a real MongoDB how it runs every declared
// query shape (QueryShapes) once the adapter's indexes exist: each must
// use an index (IXSCAN) and none may sort in memory (a SORT stage). It
// needs MONGODB_URI: FerretDB scans every collection whatever its indexes
// (DESIGN.md section 2), so its plans prove nothing.
func TestExplainQueryShapes(t *testing.T) {
	if !server.atomic {
		t.Skip("needs a real MongoDB (MONGODB_URI): FerretDB's plans are always scans")
	}
	d := newTestDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, q := range QueryShapes {
		// The old linking collections the migration reads exist only in
		// databases of older versions.
		_ = d.cur.db.CreateCollection(ctx, q.Collection)
		filter := bson.D{}
		if q.CrossTenant == "" && !hasField(q.Equality, "tenant") {
			filter = append(filter, bson.E{Key: "tenant", Value: "t1"})
		}
		for _, f := range q.Equality {
			filter = append(filter, bson.E{Key: f, Value: "x"})
		}
		for _, f := range q.Range {
			filter = append(filter, bson.E{Key: f, Value: bson.D{{Key: "$gt", Value: "x"}}})
		}
		sort := bson.D{}
		for _, k := range q.Sort {
			dir := 1
			if k.Desc {
				dir = -1
			}
			sort = append(sort, bson.E{Key: k.Field, Value: dir})
		}
		find := bson.D{{Key: "find", Value: q.Collection}, {Key: "filter", Value: filter}, {Key: "limit", Value: 21}}
		if len(sort) > 0 {
			find = append(find, bson.E{Key: "sort", Value: sort})
		}
		var out bson.M
		err := d.cur.db.RunCommand(ctx, bson.D{{Key: "explain", Value: find}, {Key: "verbosity", Value: "queryPlanner"}}).Decode(&out)
		if err != nil {
			t.Fatalf("explain %s: %v", q.Name, err)
		}
		plan, _ := json.Marshal(out["queryPlanner"].(bson.M)["winningPlan"])
		if !strings.Contains(string(plan), `"IXSCAN"`) && !strings.Contains(string(plan), `"IDHACK"`) && !strings.Contains(string(plan), `"EXPRESS_IXSCAN"`) {
			t.Errorf("%s on %s uses no index: %s", q.Name, q.Collection, plan)
		}
		if strings.Contains(string(plan), `"SORT"`) {
			t.Errorf("%s on %s sorts in memory: %s", q.Name, q.Collection, plan)
		}
	}
}

func hasField(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
