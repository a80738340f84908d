package lokiapi

import (
	"context"
	"errors"
)

func isCanceled(err error) bool { return errors.Is(err, context.Canceled) }

func isTimeout(err error) bool { return errors.Is(err, context.DeadlineExceeded) }
