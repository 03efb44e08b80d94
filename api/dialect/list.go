package dialect

import (
	"context"

	"github.com/facedhq/faced/store"
)

// All collects every item of a paged service list (ListFaces,
// ListGalleries...) matching opts, page by page: vendor documents list
// without paging, or page in their own way.
func All[T any](ctx context.Context, list func(context.Context, store.ListOptions) (store.Page[T], error), opts store.ListOptions) ([]T, error) {
	opts.Limit = store.MaxLimit
	var out []T
	for {
		page, err := list(ctx, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.Next == "" {
			return out, nil
		}
		opts.Cursor = page.Next
	}
}
