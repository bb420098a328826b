package smarthost

import (
	"fmt"

	"github.com/relayq/relayq/internal/testlib"
)

// rawRelay names a scripted relay (testlib.Serve) as a relay host whose
// certificate name is relay.test.
func rawRelay(s *testlib.Server) string { return fmt.Sprintf("[relay.test]:%d", s.Port) }
