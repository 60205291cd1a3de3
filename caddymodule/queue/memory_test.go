package queue_test

import (
	"testing"

	"github.com/webrev/webhook-gateway/caddymodule/queue"
	"github.com/webrev/webhook-gateway/caddymodule/queue/queuetest"
)

func TestMemoryConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Backend { return &queue.Memory{} }, queuetest.Options{})
}
