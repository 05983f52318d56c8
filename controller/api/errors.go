package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ovs-dlb/dlb/controller/store"
	"github.com/ovs-dlb/dlb/controller/wire"
	"github.com/ovs-dlb/dlb/lb"
)

// Error is an error answer: its status, and its body, which is shaped as
// wire.Error (huma serialises this type, and documents it, as the body).
type Error struct {
	status  int
	Message string       `json:"error" doc:"What went wrong"`
	Fields  []FieldError `json:"fields,omitempty" doc:"The fields at fault"`
}

// FieldError is one field at fault.
type FieldError = wire.FieldError

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Path + ": " + f.Message
	}
	return e.Message + ": " + strings.Join(parts, "; ")
}

// GetStatus is the HTTP status (huma.StatusError).
func (e *Error) GetStatus() int { return e.status }

// ContentType keeps the error plain JSON (huma would say problem+json).
func (e *Error) ContentType(string) string { return "application/json" }

// newError is huma.NewError for this API: huma's own validation errors
// (wrong types, unknown fields, oversized bodies) come out in our shape.
func newError(status int, msg string, errs ...error) huma.StatusError {
	e := &Error{status: status, Message: msg}
	for _, err := range errs {
		var d huma.ErrorDetailer
		switch {
		case err == nil:
		case errors.As(err, &d):
			det := d.ErrorDetail()
			path := strings.TrimPrefix(strings.TrimPrefix(det.Location, "body."), "body")
			// huma reports a missing property at its parent.
			if name, ok := strings.CutPrefix(det.Message, "expected required property "); ok {
				if name, ok = strings.CutSuffix(name, " to be present"); ok {
					if path != "" && !strings.HasPrefix(path, "path.") && !strings.HasPrefix(path, "query.") && !strings.HasPrefix(path, "header.") {
						path += "."
					}
					path += name
				}
			}
			if path == "" {
				path = "body"
			}
			e.Fields = append(e.Fields, FieldError{Path: path, Message: det.Message})
		default:
			if e.Message == "" {
				e.Message = err.Error()
			} else {
				e.Message += ": " + err.Error()
			}
		}
	}
	if e.Message == "" {
		e.Message = strings.ToLower(http.StatusText(status))
	}
	if len(e.Fields) == 0 && strings.Contains(e.Message, "request body") {
		e.Fields = []FieldError{{Path: "body", Message: e.Message}}
	}
	return e
}

func errorf(status int, format string, args ...any) *Error {
	return &Error{status: status, Message: fmt.Sprintf(format, args...)}
}

func fieldError(status int, path, format string, args ...any) *Error {
	return &Error{status: status, Message: "invalid request", Fields: []FieldError{{Path: path, Message: fmt.Sprintf(format, args...)}}}
}

// fromStore maps a store error to the API's.
func fromStore(err error) error {
	var verr *lb.ValidationError
	var aerr *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &aerr):
		return aerr
	case errors.As(err, &verr):
		e := &Error{status: http.StatusUnprocessableEntity, Message: "invalid group"}
		for _, p := range verr.Problems {
			path := p.Path
			if path == "" {
				path = "body"
			}
			e.Fields = append(e.Fields, FieldError{Path: path, Message: p.Msg})
		}
		return e
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, "%v", err)
	case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrConflict):
		return errorf(http.StatusConflict, "%v", err)
	}
	return errorf(http.StatusServiceUnavailable, "store: %v", err)
}
