"""productpage's HTML: stars, errors, the signed-in user, escaping."""

from __future__ import annotations

from samples.bookinfo.src.productpage import templates
from samples.bookinfo.src.productpage.backends import Result
from samples.bookinfo.src.productpage.products import PRODUCTS

FULL = '<span class="glyphicon glyphicon-star">'
EMPTY = '<span class="glyphicon glyphicon-star-empty">'

DETAILS = Result(
    status=200,
    body={
        "id": 0,
        "type": "paperback",
        "pages": 200,
        "publisher": "PublisherA",
        "language": "English",
        "ISBN-10": "1234567890",
        "ISBN-13": "123-1234567890",
    },
)


def reviews(*ratings: object, podname: str = "reviews-v2", cluster: str = "null") -> Result:
    return Result(
        status=200,
        body={
            "id": "0",
            "podname": podname,
            "clustername": cluster,
            "reviews": [
                {"reviewer": f"Reviewer{n}", "text": f"text {n}", "rating": rating}
                for n, rating in enumerate(ratings, start=1)
            ],
        },
    )


def page(user: str = "", details: Result = DETAILS, reviews_result: Result | None = None) -> str:
    return templates.render_product_page(
        user=user,
        product=PRODUCTS[0],
        details=details,
        reviews=reviews_result or reviews(None),
    )


def test_stars_are_full_then_empty_glyphs_in_the_given_color() -> None:
    html = templates.render_rating({"stars": 4, "color": "red"})
    assert html.startswith('<font color="red">')
    assert html.count(FULL) == 4
    assert html.count(EMPTY) == 1


def test_more_than_five_stars_are_five() -> None:
    html = templates.render_rating({"stars": 9, "color": "black"})
    assert (html.count(FULL), html.count(EMPTY)) == (5, 0)


def test_no_rating_or_no_stars_renders_nothing() -> None:
    assert templates.render_rating(None) == ""
    assert templates.render_rating({}) == ""
    assert templates.render_rating({"stars": 0, "color": "black"}) == ""
    assert templates.render_rating({"stars": True, "color": "black"}) == ""
    assert templates.render_rating("five") == ""


def test_a_ratings_error_is_shown_in_italics() -> None:
    html = templates.render_rating({"error": "Ratings service is currently unavailable"})
    assert html == "<p><i>Ratings service is currently unavailable</i></p>"


def test_page_shows_book_details_and_reviews() -> None:
    html = page(reviews_result=reviews({"stars": 5, "color": "black"}, None))
    assert "<title>Simple Bookstore App</title>" in html
    assert '<h3 class="text-center text-primary">The Comedy of Errors</h3>' in html
    assert "<b>William Shakespeare's</b>" in html  # the trusted summary markup stays markup
    for label, value in [("Type", "paperback"), ("Pages", "200"), ("ISBN-13", "123-1234567890")]:
        assert f"<dt>{label}:</dt><dd>{value}</dd>" in html
    assert "<p>text 1</p>" in html
    assert "<small>Reviewer2</small>" in html
    assert html.count(FULL) == 5
    assert "Reviews served by: reviews-v2</p>" in html
    assert "on cluster" not in html


def test_cluster_name_is_shown_when_reviews_names_one() -> None:
    html = page(reviews_result=reviews(None, podname="reviews-v3-1", cluster="east"))
    assert "Reviews served by: reviews-v3-1 on cluster east" in html


def test_failures_show_istios_texts() -> None:
    details = Result(status=503, body={"error": "Sorry, details down."})
    failed = Result(status=500, body={"error": "Sorry, reviews down."})
    html = page(details=details, reviews_result=failed)
    assert "Error fetching product details!</h4>\n<p>Sorry, details down.</p>" in html
    assert "Error fetching product reviews!</h4>\n<p>Sorry, reviews down.</p>" in html
    assert "Reviews served by" not in html


def test_signed_out_page_offers_the_sign_in_form() -> None:
    html = page()
    assert '<form method="post" action="login"' in html
    assert 'name="username"' in html
    assert "sign out" not in html


def test_signed_in_page_names_the_user_with_a_sign_out_link() -> None:
    html = page(user="jason")
    assert '<p class="user">jason ( <a href="logout">sign out</a> )</p>' in html
    assert 'action="login"' not in html


def test_values_from_outside_are_escaped() -> None:
    evil = "<script>alert(1)</script>"
    bad_reviews = Result(
        status=200,
        body={
            "podname": evil,
            "reviews": [{"reviewer": evil, "text": evil, "rating": {"stars": 1, "color": evil}}],
        },
    )
    html = page(user=evil, reviews_result=bad_reviews)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_index_draws_the_topology_and_the_user_links() -> None:
    topology = {
        "name": "productpage",
        "endpoint": "productpage",
        "children": [{"name": "http://details:9080", "endpoint": "details", "children": []}],
    }
    html = templates.render_index(user="", topology=topology)
    assert "<td>http://details:9080</td>" in html
    assert '<a href="productpage?u=normal">Normal user</a>' in html
    assert '<a href="productpage?u=test">Test user</a>' in html
