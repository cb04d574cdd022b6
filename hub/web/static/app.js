// Small enhancements for the staff pages; every page works without them.
"use strict";
