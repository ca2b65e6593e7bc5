// Package related holds the domain of the Related gateway: interactions,
// their messages, contacts and queues, and the rules that hold for them
// whatever stores or serves them.
//
// Nothing in this package does I/O. The store package persists these types,
// the resolvers package serves them over GraphQL, and cmd/relatedd wires the
// two together.
package related

//go:generate go tool gqlgen generate --config gqlgen.yml
