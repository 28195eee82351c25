"""productpage's HTML: the index and the product page, from string templates.

Markup follows Istio's templates where it matters to people and tests that read the page:
`glyphicon glyphicon-star` / `glyphicon-star-empty` spans inside `<font color="...">`, the
error headings, the sign-in form posting `username` to `login`. Every value that came from a
request or another service is escaped.
"""

from __future__ import annotations

from html import escape
from string import Template
from typing import Any

from samples.bookinfo.src.productpage.backends import Result
from samples.bookinfo.src.productpage.products import Product

MAX_STARS = 5

_PAGE = Template("""<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Simple Bookstore App</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; margin: 0; color: #333; }
nav { background: #222; color: #ddd; padding: 10px 20px; overflow: hidden; }
nav .brand { color: #fff; font-size: 18px; text-decoration: none; }
nav .user, nav form { float: right; margin: 0; }
nav a { color: #9cf; }
.container { padding: 0 20px; }
.row { display: flex; flex-wrap: wrap; gap: 20px; }
.col { flex: 1 1 300px; }
.text-primary { color: #337ab7; }
.text-center { text-align: center; }
blockquote { border-left: 5px solid #eee; margin: 0 0 20px; padding: 10px 20px; }
blockquote small { display: block; color: #777; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
.glyphicon { font-size: 20px; }
</style>
</head>
<body>
$navbar
<div class="container">
$content
</div>
</body>
</html>
""")

_NAVBAR = Template("""<nav>
<a class="brand" href="#">BookInfo Sample</a>
$user_control
</nav>""")

_SIGNED_IN = Template(
    '<p class="user">$user ( <a href="logout">sign out</a> )</p>',
)

_SIGN_IN_FORM = """<form method="post" action="login" name="login_form">
<input type="text" name="username" placeholder="User Name">
<input type="password" name="passwd" placeholder="Password">
<button type="submit">Sign in</button>
</form>"""

_PRODUCT = Template("""<div class="row">
<div class="col">
<h3 class="text-center text-primary">$title</h3>
<p>Summary: $description</p>
</div>
</div>
<div class="row">
<div class="col" id="details">
$details
</div>
<div class="col" id="reviews">
$reviews
</div>
</div>""")

_INDEX = Template("""<div class="row"><div class="col">
<h3>Hello! This is a simple bookstore application consisting of three services as shown below</h3>
$topology
<h4>Click on one of the links below to auto generate a request to the backend as a real user or a tester</h4>
<p><a href="productpage?u=normal">Normal user</a></p>
<p><a href="productpage?u=test">Test user</a></p>
</div></div>""")

# (label, key in the details JSON), in Istio's order.
_DETAIL_FIELDS: tuple[tuple[str, str], ...] = (
    ("Type", "type"),
    ("Pages", "pages"),
    ("Publisher", "publisher"),
    ("Language", "language"),
    ("ISBN-10", "ISBN-10"),
    ("ISBN-13", "ISBN-13"),
)


def _text(value: Any) -> str:
    return escape("" if value is None else str(value))


def _page(user: str, content: str) -> str:
    control = _SIGNED_IN.substitute(user=_text(user)) if user else _SIGN_IN_FORM
    navbar = _NAVBAR.substitute(user_control=control)
    return _PAGE.substitute(navbar=navbar, content=content)


def _error_section(heading: str, result: Result) -> str:
    return (
        f'<h4 class="text-center text-primary">{heading}</h4>\n'
        f"<p>{_text(result.body.get('error'))}</p>"
    )


def render_details(result: Result) -> str:
    if not result.ok:
        return _error_section("Error fetching product details!", result)
    rows = "\n".join(
        f"<dt>{label}:</dt><dd>{_text(result.body.get(key))}</dd>" for label, key in _DETAIL_FIELDS
    )
    return f'<h4 class="text-center text-primary">Book Details</h4>\n<dl>\n{rows}\n</dl>'


def render_rating(rating: Any) -> str:
    """Stars in the color reviews chose, the ratings error, or nothing (reviews v1)."""
    if not isinstance(rating, dict):
        return ""
    stars = rating.get("stars")
    if isinstance(stars, int) and not isinstance(stars, bool) and stars > 0:
        full = min(stars, MAX_STARS)
        glyphs = '<span class="glyphicon glyphicon-star">&#9733;</span>' * full
        glyphs += '<span class="glyphicon glyphicon-star-empty">&#9734;</span>' * (MAX_STARS - full)
        return f'<font color="{_text(rating.get("color"))}">{glyphs}</font>'
    if rating.get("error"):
        return f"<p><i>{_text(rating['error'])}</i></p>"
    return ""


def render_reviews(result: Result) -> str:
    if not result.ok:
        return _error_section("Error fetching product reviews!", result)
    parts = ['<h4 class="text-center text-primary">Book Reviews</h4>']
    reviews = result.body.get("reviews")
    for review in reviews if isinstance(reviews, list) else []:
        if not isinstance(review, dict):
            continue
        parts.append(
            "<blockquote>\n"
            f"<p>{_text(review.get('text'))}</p>\n"
            f"<small>{_text(review.get('reviewer'))}</small>\n"
            f"{render_rating(review.get('rating'))}\n"
            "</blockquote>"
        )
    served_by = f"Reviews served by: {_text(result.body.get('podname'))}"
    cluster = result.body.get("clustername")
    if cluster not in (None, "", "null"):
        served_by += f" on cluster {_text(cluster)}"
    parts.append(f'<p class="served-by">{served_by}</p>')
    return "\n".join(parts)


def render_product_page(*, user: str, product: Product, details: Result, reviews: Result) -> str:
    content = _PRODUCT.substitute(
        title=_text(product.title),
        description=product.description_html,
        details=render_details(details),
        reviews=render_reviews(reviews),
    )
    return _page(user, content)


def _topology_table(node: dict[str, Any]) -> str:
    children = "".join(_topology_table(child) for child in node.get("children", []))
    return (
        "<table>"
        f"<tr><th>name</th><td>{_text(node.get('name'))}</td></tr>"
        f"<tr><th>endpoint</th><td>{_text(node.get('endpoint'))}</td></tr>"
        f"<tr><th>children</th><td>{children}</td></tr>"
        "</table>"
    )


def render_index(*, user: str, topology: dict[str, Any]) -> str:
    return _page(user, _INDEX.substitute(topology=_topology_table(topology)))
