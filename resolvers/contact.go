package resolvers

type contactResolver struct{ *Resolver }
