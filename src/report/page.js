(function () {
  // Counts script errors from the start; on load, writes data-images="decoded/total" and
  // data-errors on <body> for a headless browser's DOM dump to check.
  var errors = 0;
  window.addEventListener("error", function () {
    errors += 1;
    if (document.body) document.body.dataset.errors = String(errors);
  });
  window.addEventListener("load", function () {
    var images = document.images;
    var decoded = 0;
    for (var i = 0; i < images.length; i++) {
      if (images[i].complete && images[i].naturalWidth > 0) decoded += 1;
    }
    document.body.dataset.images = decoded + "/" + images.length;
    document.body.dataset.errors = String(errors);
  });
})();
