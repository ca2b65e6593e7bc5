package mongo

import (
	"testing"

	"github.com/relatedhq/related/store/storetest"
)

func TestProfiles(t *testing.T) { storetest.RunProfiles(t, opener) }

func TestCanonical(t *testing.T) { storetest.RunCanonical(t, opener) }
