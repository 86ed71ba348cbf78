// Package mail sends the product's emails: it is the sender hosted service
// that claims rows from the outbox, renders them and hands them to an SMTP
// server with go-mail, retrying what fails for a while.
package mail
