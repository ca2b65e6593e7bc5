package server

import (
	"log/slog"
	"net/http"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/export"
)

// exportProfile answers GET /export/profiles/{id}: everything kept about
// one person, as newline-delimited JSON, for a subject-access request
// (admin keys only). It streams page by page, so its memory does not grow
// with the person's history; the export is logged like an erasure.
func (s *Server) exportProfile(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v, ok := related.ViewerFrom(ctx)
	if !ok {
		writeError(w, r, http.StatusUnauthorized, CodeUnauthenticated, errUnauthenticated.Error())
		return
	}
	if v.Role != related.RoleAdmin {
		writeError(w, r, http.StatusForbidden, CodeForbidden, "exporting a profile takes an admin key")
		return
	}
	id := r.PathValue("id")
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="profile.ndjson"`)
	cw := &committed{ResponseWriter: w}
	err := export.Profile(ctx, s.opts.Store, v.Tenant, id, s.opts.Now(), cw)
	switch {
	case err == nil:
		s.log.InfoContext(ctx, "profile exported", "request_id", RequestID(ctx), "tenant", v.Tenant, "by", related.ActorFrom(ctx).String())
	case cw.wrote:
		// Headers are gone: the client sees a cut-off stream.
		s.log.WarnContext(ctx, "export cut off", "request_id", RequestID(ctx), "err", err)
	case related.IsNotFound(err):
		w.Header().Del("Content-Disposition")
		writeError(w, r, http.StatusNotFound, "NOT_FOUND", "no such profile")
	default:
		w.Header().Del("Content-Disposition")
		s.log.ErrorContext(ctx, "export failed", slog.String("request_id", RequestID(ctx)), slog.Any("err", err))
		writeError(w, r, http.StatusInternalServerError, CodeInternal, "internal server error (request id "+RequestID(ctx)+")")
	}
}

// committed remembers whether anything was written.
type committed struct {
	http.ResponseWriter
	wrote bool
}

func (c *committed) Write(b []byte) (int, error) {
	c.wrote = true
	return c.ResponseWriter.Write(b)
}
