// Package operation holds the GraphQL operations that agent desktops send
// most, as text: the load tool (cmd/relatedload) sends them, and the tests
// that guard their database cost (server/cost_test.go) and the benchmarks
// of their CPU cost (resolvers) run them, so all three measure the same
// thing.
package operation

// OpenInteraction is what an agent desktop asks when an agent opens an
// interaction: the interaction, its profile bar, and the first page of its
// Related panel with every field the panel shows. Variables: id (the
// interaction's global id) and first (the page size).
//
// The server answers exactly this text with a compiled plan
// (resolvers.Plan) that writes these fields in this order: a change here is
// a change there, and server's TestPlanMatchesGqlgen fails until both agree.
const OpenInteraction = `query Open($id: ID!, $first: Int) {
  interaction(id: $id) {
    id channel status closedState closedAt createdAt
    contact { id name address }
    queue { id name }
    lastMessage { id body sentAt direction author }
    profile { id name channels }
    related(first: $first) {
      scope totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges {
        cursor
        node {
          id channel status closedState closedAt
          contact { id name }
          queue { id name }
          lastMessage { preview sentAt direction }
        }
      }
    }
  }
}`
