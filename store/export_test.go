package store

// SetPreviewChunk makes previews gather n touched contacts at a time until
// the returned function restores the size.
func SetPreviewChunk(n int) (restore func()) {
	was := previewChunk
	previewChunk = n
	return func() { previewChunk = was }
}
