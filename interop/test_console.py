"""The web console in a real browser: headless Chromium (Debian's chromium
and chromium-driver) driven through WebDriver. Each page it visits is saved
as a screenshot under target/console-screenshots/."""

import json
import os
import re
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.keys import Keys

from conftest import ACCESS_KEY, ROOT, SECRET_KEY

EAST, WEST = "us-east-1", "eu-west-1"
ACCOUNT = "000000000000"
SHOTS = ROOT / "target" / "console-screenshots"


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.implicitly_wait(0)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def shot(browser, name: str) -> None:
    browser.save_screenshot(str(SHOTS / f"{name}.png"))


def until(what: str, check, seconds: float = 20, browser=None):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            found = check()
        except WebDriverException:
            found = None  # the page was being replaced
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"never: {what}")


def sign_in(browser, tern, key_id: str, secret: str) -> None:
    browser.get(tern.endpoint() + "/_tern/console/")
    browser.find_element(By.ID, "access-key").send_keys(key_id)
    browser.find_element(By.ID, "secret-key").send_keys(secret)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()


def text(browser) -> str:
    return browser.find_element(By.TAG_NAME, "body").text


def every_control_is_labelled(browser) -> list:
    """Form controls a screen reader could not name."""
    return browser.execute_script("""
        return [...document.querySelectorAll('input:not([type=hidden]), select, button, progress')]
          .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
          .map(e => e.outerHTML);""")


def role_policy(tern, role: str, actions: list[str]) -> None:
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    tern.client("iam").put_role_policy(RoleName=role, PolicyName="crr", PolicyDocument=json.dumps(allow))


def replication_counts(browser) -> tuple[int, int, int]:
    values = [browser.find_element(By.ID, f"count-{s}").text for s in ("pending", "completed", "failed")]
    return tuple(int(v) for v in values)


def test_sign_in_create_upload_replicate_break_fix_retry(tern, browser):
    suffix = str(time.time_ns() % 10**8)
    source, destination, role = f"console-src-{suffix}", f"console-dst-{suffix}", f"console-crr-{suffix}"
    west = tern.client("s3", WEST)
    west.create_bucket(Bucket=destination, CreateBucketConfiguration={"LocationConstraint": WEST})
    west.put_bucket_versioning(Bucket=destination, VersioningConfiguration={"Status": "Enabled"})
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    tern.client("iam").create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    role_policy(tern, role, ["s3:GetObjectVersionForReplication", "s3:ReplicateObject"])

    # Sign in; the first Tab reaches the skip link, and every control has a name.
    sign_in(browser, tern, ACCESS_KEY, SECRET_KEY)
    until("the deployment page", lambda: "Deployment" in browser.title)
    assert "us-east-1" in text(browser) and "serving" in text(browser)
    shot(browser, "1-deployment")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to content"
    cookie = browser.get_cookie("tern_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # Create the source bucket from the console.
    browser.find_element(By.LINK_TEXT, "Buckets").click()
    browser.find_element(By.ID, "bucket-name").send_keys(source)
    browser.find_element(By.XPATH, "//button[text()='Create bucket']").click()
    until("the bucket listed", lambda: f"Bucket {source} was created" in text(browser))
    assert every_control_is_labelled(browser) == []
    shot(browser, "2-buckets")
    east = tern.client("s3", EAST)
    east.put_bucket_versioning(Bucket=source, VersioningConfiguration={"Status": "Enabled"})
    east.put_bucket_replication(Bucket=source, ReplicationConfiguration={"Role": f"arn:aws:iam::{ACCOUNT}:role/{role}", "Rules": [
        {"ID": "all", "Priority": 1, "Status": "Enabled", "Filter": {},
         "DeleteMarkerReplication": {"Status": "Disabled"}, "Destination": {"Bucket": f"arn:aws:s3:::{destination}"}}]})

    # Upload a file with the page's progress bar, and see it replicate.
    upload(browser, tern, source, "first.txt", b"the first file")
    assert every_control_is_labelled(browser) == []
    shot(browser, "3-objects")
    browser.get(f"{tern.endpoint()}/_tern/console/replication?bucket={source}")
    until("COMPLETED", lambda: browser.refresh() or replication_counts(browser) == (0, 1, 0))
    assert "can work" in text(browser)
    until("the lag chart drawn", lambda: browser.find_element(By.ID, "lag-pending").get_attribute("points"))
    shot(browser, "4-replication-completed")

    # Break the role. Once the preflight check sees it (IAM reaches every
    # region within moments, as on AWS), the next object FAILS, with AWS's
    # reason and the fix.
    role_policy(tern, role, ["s3:GetObjectVersionForReplication"])
    until("the check sees it", lambda: browser.refresh() or "cannot work" in text(browser))
    upload(browser, tern, source, "second.txt", b"the second file")
    browser.get(f"{tern.endpoint()}/_tern/console/replication?bucket={source}")
    until("FAILED", lambda: browser.refresh() or replication_counts(browser) == (0, 1, 1))
    page = text(browser)
    assert "DstPutObjectNotPermitted" in page and "s3:ReplicateObject" in page
    shot(browser, "5-replication-failed")

    # Fix it, retry from the console, and it completes.
    role_policy(tern, role, ["s3:GetObjectVersionForReplication", "s3:ReplicateObject"])
    browser.find_element(By.XPATH, "//button[text()='Retry failed versions']").click()
    until("COMPLETED after the retry", lambda: browser.refresh() or replication_counts(browser) == (0, 2, 0))
    assert west.get_object(Bucket=destination, Key="second.txt")["Body"].read() == b"the second file"
    shot(browser, "6-replication-retried")

    # The keys page shows a multi-Region key's family across regions.
    kms = tern.client("kms", EAST)
    mrk = kms.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    kms.replicate_key(KeyId=mrk, ReplicaRegion=WEST)
    browser.find_element(By.LINK_TEXT, "KMS keys").click()
    family = browser.find_element(By.XPATH, f"//td[text()='{mrk}']/..").text
    assert "us-east-1 (Enabled)" in family and "eu-west-1 (Enabled)" in family
    shot(browser, "7-keys")

    # Download what was uploaded, then sign out: the session is gone.
    browser.get(f"{tern.endpoint()}/_tern/console/bucket?bucket={source}")
    href = browser.find_element(By.CSS_SELECTOR, "a[aria-label='Download first.txt']").get_attribute("href")
    assert "key=first.txt" in href
    browser.find_element(By.XPATH, "//button[text()='Sign out']").click()
    until("signed out", lambda: browser.find_elements(By.ID, "access-key"))
    browser.get(f"{tern.endpoint()}/_tern/console/buckets")
    assert browser.find_elements(By.ID, "access-key"), "back to sign-in"


def upload(browser, tern, bucket: str, name: str, data: bytes) -> None:
    path = tern.workdir / name
    path.write_bytes(data)
    browser.get(f"{tern.endpoint()}/_tern/console/bucket?bucket={bucket}")
    browser.find_element(By.ID, "upload-file").send_keys(str(path))
    browser.find_element(By.XPATH, "//form[@id='upload']//button").click()
    until(f"{name} listed", lambda: name in text(browser) and "Uploading" not in text(browser))


def test_a_read_only_user_sees_but_cannot_change(tern, browser):
    iam = tern.client("iam")
    name = f"console-reader-{time.time_ns() % 10**8}"
    iam.create_user(UserName=name)
    read = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:List*", "s3:Get*", "kms:List*", "kms:Describe*"], "Resource": "*"}]}
    iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps(read))
    key = iam.create_access_key(UserName=name)["AccessKey"]

    sign_in(browser, tern, "AKIANOTAKEY000000000", "wrong")
    until("a refusal", lambda: "was refused" in text(browser))
    assert "InvalidClientTokenId" in text(browser)

    sign_in(browser, tern, key["AccessKeyId"], key["SecretAccessKey"])
    until("signed in", lambda: "Deployment" in browser.title)
    assert f"user/{name}" in text(browser)
    browser.find_element(By.LINK_TEXT, "Buckets").click()
    browser.find_element(By.ID, "bucket-name").send_keys(f"not-allowed-{time.time_ns() % 10**8}")
    browser.find_element(By.XPATH, "//button[text()='Create bucket']").click()
    until("AccessDenied", lambda: "AccessDenied" in text(browser))
    shot(browser, "8-read-only-refused")

    # A change without the session's CSRF token is refused, even signed in.
    refused = browser.execute_script("""
        const r = await fetch('/_tern/console/buckets', {method: 'POST',
          headers: {'content-type': 'application/x-www-form-urlencoded'}, body: 'bucket=csrf-test&region=us-east-1'});
        return [r.status, await r.text()];""")
    assert refused[0] == 403 and "stale" in refused[1]
