// Package webhook posts destination status notifications to an HTTP
// endpoint (notifications.webhook in the configuration): each
// notification's JSON as the body of one POST.
package webhook
