// Package docs holds tenantgate's documentation (Markdown). Its only Go code
// is a test that every relative link in the repository's Markdown resolves
// to a file or directory of the repository.
package docs
