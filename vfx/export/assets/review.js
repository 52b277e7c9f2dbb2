// vfx review page: a frame-accurate flipbook over the proxies in frames/, with a cursor on the QC plots.
// Everything it needs is in the page (the JSON in #review-data) and this folder; nothing is fetched.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("review-data").textContent);
  var frames = data.frames;
  var count = frames.length;
  var fps = data.fps[0] / data.fps[1];
  var index = 0;
  var playing = false;
  var playStart = 0;
  var playFrom = 0;
  var timer = null;

  var el = function (id) { return document.getElementById(id); };
  var views = { plate: el("view-plate"), result: el("view-result"), matte: el("view-matte") };
  var scrubber = el("scrubber");
  var playButton = el("play");

  function src(kind, frame) {
    return "frames/" + kind + "." + frame + (kind === "matte" ? ".png" : ".jpg");
  }

  // Preload every proxy, so scrubbing and playback show the frame asked for, not the one still loading.
  var cache = [];
  frames.forEach(function (frame) {
    ["plate", "result", "matte"].forEach(function (kind) {
      var img = new Image();
      img.src = src(kind, frame);
      cache.push(img);
    });
  });

  function fmt(value, digits) {
    return value === null || value === undefined ? "n/a" : value.toFixed(digits);
  }

  function placeCursor() {
    var plot = el("qc-image");
    var cursor = el("qc-cursor");
    if (!plot || !cursor || !plot.clientWidth) { return; }
    var a = data.axis;
    var frac = (frames[index] - a.lo) / (a.hi - a.lo);
    var x = (a.x0 + frac * (a.x1 - a.x0)) * plot.clientWidth;
    cursor.style.left = x + "px";
    cursor.style.top = a.y0 * plot.clientHeight + "px";
    cursor.style.height = (a.y1 - a.y0) * plot.clientHeight + "px";
  }

  function show(i) {
    index = Math.max(0, Math.min(count - 1, i));
    var frame = frames[index];
    views.plate.src = src("plate", frame);
    views.result.src = src("result", frame);
    views.matte.src = src("matte", frame);
    scrubber.value = String(index);
    el("frame-label").textContent = String(frame);
    el("timecode").textContent = data.timecodes[index];
    var flag = el("face-flag");
    flag.textContent = data.face[index] ? "face" : "NO FACE";
    flag.className = "flag " + (data.face[index] ? "face" : "noface");
    var s = data.series;
    el("frame-figures").innerHTML =
      "frame " + (index + 1) + "/" + count +
      " · id→persona <b>" + fmt(s.identity_persona[index], 3) + "</b>" +
      " · id→actor <b>" + fmt(s.identity_actor[index], 3) + "</b>" +
      " · jitter <b>" + fmt(s.jitter[index], 2) + "</b> % IOD" +
      " · matte <b>" + fmt(s.matte_area[index], 2) + "</b> %" +
      " · flicker <b>" + fmt(s.flicker[index], 2) + "</b>";
    document.body.setAttribute("data-frame", String(frame));
    placeCursor();
  }

  function stop() {
    playing = false;
    if (timer !== null) { window.clearTimeout(timer); timer = null; }
    playButton.classList.remove("playing");
  }

  // Playback keeps to the plate's exact rate: the frame shown is the one due at this instant since play began
  // (frames are skipped rather than the clock slowed when the browser falls behind).
  function tick() {
    if (!playing) { return; }
    var due = playFrom + Math.floor((performance.now() - playStart) * fps / 1000);
    if (due >= count) {
      if (!el("loop").checked) { show(count - 1); stop(); return; }
      playFrom = 0; playStart = performance.now(); due = 0;
    }
    if (due !== index) { show(due); }
    var next = playStart + ((due - playFrom + 1) * 1000) / fps;
    timer = window.setTimeout(tick, Math.max(1, next - performance.now()));
  }

  function play() {
    if (playing) { stop(); return; }
    if (index >= count - 1) { show(0); }
    playing = true;
    playFrom = index;
    playStart = performance.now();
    playButton.classList.add("playing");
    tick();
  }

  scrubber.max = String(count - 1);
  scrubber.addEventListener("input", function () { stop(); show(parseInt(scrubber.value, 10)); });
  el("prev").addEventListener("click", function () { stop(); show(index - 1); });
  el("next").addEventListener("click", function () { stop(); show(index + 1); });
  el("first").addEventListener("click", function () { stop(); show(0); });
  el("last").addEventListener("click", function () { stop(); show(count - 1); });
  playButton.addEventListener("click", play);
  el("qc-plot").addEventListener("click", function (event) {
    var plot = el("qc-image");
    var a = data.axis;
    var frac = (event.offsetX / plot.clientWidth - a.x0) / (a.x1 - a.x0);
    var frame = Math.round(a.lo + frac * (a.hi - a.lo));
    var i = frames.indexOf(frame);
    if (i < 0) {
      i = frames.reduce(function (best, f, k) {
        return Math.abs(f - frame) < Math.abs(frames[best] - frame) ? k : best;
      }, 0);
    }
    stop();
    show(i);
  });
  document.addEventListener("keydown", function (event) {
    if (event.target && event.target.tagName === "INPUT" && event.target.type !== "range") { return; }
    if (event.key === "ArrowLeft") { stop(); show(index - 1); event.preventDefault(); }
    else if (event.key === "ArrowRight") { stop(); show(index + 1); event.preventDefault(); }
    else if (event.key === " ") { play(); event.preventDefault(); }
    else if (event.key === "Home") { stop(); show(0); event.preventDefault(); }
    else if (event.key === "End") { stop(); show(count - 1); event.preventDefault(); }
  });
  el("qc-image").addEventListener("load", placeCursor);
  window.addEventListener("resize", placeCursor);
  el("fps-label").textContent = (data.fps[1] === 1 ? data.fps[0] : data.fps[0] + "/" + data.fps[1]) + " fps";
  show(0);
})();
