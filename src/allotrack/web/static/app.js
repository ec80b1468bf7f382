// htmx leaves 4xx answers unswapped: a form refused with its reasons (422) or a conflicting change (409) would
// then show nothing. Swap them like a success, so the refused form and its message replace the page.
document.addEventListener("htmx:beforeSwap", function (event) {
  var status = event.detail.xhr.status;
  if (status === 422 || status === 409) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
