// Maps of the Mängelmelder, drawn with the Leaflet the hub serves: a place picked on the report form (with the
// nearby open reports of the same category, each with "Ich auch"), the pins of a list, or one report's place.
// Without JavaScript the maps stay hidden and the form takes an address; without tiles the pins sit on grey.
(function () {
  "use strict";

  function start(element) {
    element.hidden = false;
    var map = L.map(element, { scrollWheelZoom: false, zoomControl: false });
    L.control.zoom({ zoomInTitle: element.dataset.zoomIn, zoomOutTitle: element.dataset.zoomOut }).addTo(map);
    map.attributionControl.setPrefix(false);
    if (element.dataset.tiles) {
      L.tileLayer(element.dataset.tiles, { attribution: element.dataset.attribution, maxZoom: 19 }).addTo(map);
    }
    var box = element.dataset.bounds ? element.dataset.bounds.split(",").map(Number) : null; // west,south,east,north
    if (box) {
      map.fitBounds([[box[1], box[0]], [box[3], box[2]]]);
    } else {
      map.setView([51.16, 10.45], 6); // Germany, for a town that drew no area
    }
    return map;
  }

  function showPins(element) {
    var map = start(element);
    var pins = JSON.parse(element.dataset.pins || "[]");
    var points = [];
    pins.forEach(function (pin) {
      var marker = L.marker([pin.lat, pin.lon], { title: pin.label, alt: pin.label }).addTo(map);
      var popup = document.createElement(pin.url ? "a" : "span");
      popup.textContent = pin.label;
      if (pin.url) popup.href = pin.url;
      marker.bindPopup(popup);
      points.push([pin.lat, pin.lon]);
    });
    if (points.length) map.fitBounds(points, { maxZoom: 16, padding: [24, 24] });
  }

  function showPoint(element) {
    var map = start(element);
    var place = [Number(element.dataset.lat), Number(element.dataset.lon)];
    L.marker(place, { title: element.getAttribute("aria-label"), alt: element.getAttribute("aria-label") }).addTo(map);
    map.setView(place, 16);
  }

  function fill(template, values) {
    return template.replace(/\{(\w)\}/g, function (_, key) { return values[key]; });
  }

  function pick(element) {
    var form = element.closest("form");
    var lat = form.querySelector("#f-lat");
    var lon = form.querySelector("#f-lon");
    var category = form.querySelector("#f-category");
    var status = form.querySelector("#pin-status");
    var nearby = document.getElementById("nearby");
    var list = document.getElementById("nearby-list");
    var map = start(element);
    var marker = null;
    form.querySelectorAll(".js-only").forEach(function (part) { part.hidden = false; });

    function lookUp() {
      if (!marker || !category.value) { nearby.hidden = true; return; }
      var query = new URLSearchParams({ category: category.value, lat: lat.value, lon: lon.value });
      fetch(element.dataset.nearby + "?" + query, { headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : []; })
        .then(function (found) {
          list.replaceChildren();
          found.forEach(function (item) {
            var entry = document.createElement("li");
            var text = document.createElement("p");
            var reporters = item.reporters === 1 ? nearby.dataset.one : fill(nearby.dataset.many, { n: item.reporters });
            text.textContent = [item.reference, item.address, fill(nearby.dataset.metres, { m: item.metres }), reporters,
              item.public_status].filter(Boolean).join(" · ");
            var button = document.createElement("button");
            button.type = "submit";
            button.className = "secondary";
            button.formAction = nearby.dataset.action + item.id;
            button.formNoValidate = true;
            button.textContent = nearby.dataset.support;
            button.setAttribute("aria-label", fill(nearby.dataset.supportLabel, { r: item.reference }));
            entry.append(text, button);
            list.append(entry);
          });
          nearby.hidden = found.length === 0;
        })
        .catch(function () { nearby.hidden = true; });
    }

    function place(latlng) {
      lat.value = latlng.lat.toFixed(6);
      lon.value = latlng.lng.toFixed(6);
      if (marker) {
        marker.setLatLng(latlng);
      } else {
        marker = L.marker(latlng, { draggable: true, title: status.dataset.pin, alt: status.dataset.pin }).addTo(map);
        marker.on("dragend", function () { place(marker.getLatLng()); });
      }
      status.textContent = status.dataset.set;
      lookUp();
    }

    map.on("click", function (event) { place(event.latlng); });
    category.addEventListener("change", lookUp);
    if (lat.value && lon.value) {
      place(L.latLng(Number(lat.value), Number(lon.value)));
      map.setView(marker.getLatLng(), 16);
    }
    var locate = document.getElementById("locate");
    var failed = document.getElementById("locate-status");
    locate.addEventListener("click", function () {
      failed.hidden = true;
      if (!navigator.geolocation) { failed.textContent = failed.dataset.denied; failed.hidden = false; return; }
      navigator.geolocation.getCurrentPosition(function (position) {
        var here = L.latLng(position.coords.latitude, position.coords.longitude);
        place(here);
        map.setView(here, 17);
      }, function () {
        failed.textContent = failed.dataset.denied;
        failed.hidden = false;
      }, { enableHighAccuracy: true, timeout: 15000 });
    });
  }

  var modes = { pick: pick, pins: showPins, point: showPoint };
  document.querySelectorAll("[data-map]").forEach(function (element) {
    if (window.L && modes[element.dataset.map]) modes[element.dataset.map](element);
  });
})();
