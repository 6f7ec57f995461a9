#!/usr/bin/env python3
# The scripts users write today, quoted as a peer for scripts/bench — not our code.
#
# The functions below are copied from the Confluence attachments API notes users work from
# (shared/seed, "Confluence Attachments API Reference": upload_attachment, get_attachments,
# download_attachment, bulk_upload_attachments, backup_all_attachments) as written, with two
# changes only, both marked `# bench:`:
#   1. the fixed `time.sleep(2)` between upload batches is removed (we time the transfer, not
#      the politeness delay);
#   2. download_attachment's URL: the notes use `{base_url}/rest/api/content/{id}/download`,
#      which neither Confluence nor the test server serves (404), so the script downloads from
#      the attachment's own `_links.download` — the link the metadata request it already makes
#      returns. Same number of requests as written.
# Below the quoted functions, a small command line drives them for the bench.

import os
import sys

import requests


def upload_attachment(base_url, auth, content_id, file_path, comment=None):
    """Upload a file attachment to a Confluence page or blog post"""
    
    url = f"{base_url}/rest/api/content/{content_id}/child/attachment"
    
    headers = {
        "X-Atlassian-Token": "no-check"
    }
    
    with open(file_path, 'rb') as file:
        files = {
            'file': (os.path.basename(file_path), file)
        }
        
        data = {}
        if comment:
            data['comment'] = comment
        
        response = requests.post(
            url,
            auth=auth,
            headers=headers,
            files=files,
            data=data
        )
    
    return response.json()


def get_attachments(base_url, auth, content_id, filename=None, media_type=None):
    """Get all attachments for a page or blog post"""
    
    url = f"{base_url}/rest/api/content/{content_id}/child/attachment"
    
    params = {
        "expand": "version,metadata",
        "limit": 100
    }
    
    if filename:
        params["filename"] = filename
    if media_type:
        params["mediaType"] = media_type
    
    response = requests.get(url, auth=auth, params=params)
    return response.json()


def download_attachment(base_url, auth, attachment_id, save_path):
    """Download an attachment to local file system"""
    
    # Get attachment metadata first
    metadata_url = f"{base_url}/rest/api/content/{attachment_id}"
    metadata = requests.get(metadata_url, auth=auth).json()
    
    # Download the file
    # bench: was f"{base_url}/rest/api/content/{attachment_id}/download" (a 404 everywhere)
    download_url = f"{base_url}{metadata['_links']['download']}"
    
    response = requests.get(download_url, auth=auth, stream=True)
    response.raise_for_status()
    
    # Save to file
    with open(save_path, 'wb') as file:
        for chunk in response.iter_content(chunk_size=8192):
            file.write(chunk)
    
    return {
        'filename': metadata['title'],
        'size': metadata['extensions']['fileSize'],
        'saved_to': save_path
    }


def bulk_upload_attachments(base_url, auth, content_id, file_paths, batch_size=5):
    """Upload multiple files with rate limiting"""
    
    uploaded = []
    failed = []
    
    for i in range(0, len(file_paths), batch_size):
        batch = file_paths[i:i + batch_size]
        
        for file_path in batch:
            try:
                result = upload_attachment(base_url, auth, content_id, file_path)
                uploaded.append({
                    'file': file_path,
                    'attachment_id': result['results'][0]['id'],
                    'title': result['results'][0]['title']
                })
                print(f"Uploaded: {os.path.basename(file_path)}")
                
            except Exception as e:
                failed.append({
                    'file': file_path,
                    'error': str(e)
                })
                print(f"Failed: {os.path.basename(file_path)} - {e}")
        
        # Rate limiting between batches
        if i + batch_size < len(file_paths):
            pass  # bench: was time.sleep(2)
    
    return {
        'uploaded': uploaded,
        'failed': failed,
        'total': len(file_paths)
    }


def backup_all_attachments(base_url, auth, space_key, backup_dir):
    """Backup all attachments from a space"""
    
    if not os.path.exists(backup_dir):
        os.makedirs(backup_dir)
    
    # Search for all content in space
    cql = f"space={space_key} and type in (page, blogpost)"
    search_url = f"{base_url}/rest/api/content/search"
    
    params = {
        "cql": cql,
        "limit": 100,
        "expand": "metadata"
    }
    
    response = requests.get(search_url, auth=auth, params=params)
    content_items = response.json()
    
    total_attachments = 0
    
    for item in content_items['results']:
        # Get attachments for each content item
        attachments = get_attachments(base_url, auth, item['id'])
        
        if attachments['results']:
            # Create directory for this content
            content_dir = os.path.join(
                backup_dir,
                f"{item['id']}_{item['title'].replace('/', '_')}"
            )
            os.makedirs(content_dir, exist_ok=True)
            
            for attachment in attachments['results']:
                # Download each attachment
                save_path = os.path.join(content_dir, attachment['title'])
                
                try:
                    download_attachment(
                        base_url,
                        auth,
                        attachment['id'],
                        save_path
                    )
                    total_attachments += 1
                    print(f"Backed up: {attachment['title']}")
                    
                except Exception as e:
                    print(f"Failed to backup {attachment['title']}: {e}")
    
    return total_attachments


# --- the bench's driver (ours) -------------------------------------------------------------
#   seed_script.py download BASE ATTACHMENT_ID SAVE_PATH
#   seed_script.py backup BASE SPACE_KEY BACKUP_DIR
#   seed_script.py bulk BASE PAGE_ID FILE...
#   seed_script.py upload BASE PAGE_ID FILE
# Credentials: CONFLUENCE_USER / CONFLUENCE_TOKEN. Exit status 1 when anything failed.
def main(argv):
    auth = (os.environ["CONFLUENCE_USER"], os.environ["CONFLUENCE_TOKEN"])
    command, base = argv[0], argv[1]
    if command == "download":
        download_attachment(base, auth, argv[2], argv[3])
    elif command == "backup":
        total = backup_all_attachments(base, auth, argv[2], argv[3])
        print(f"total {total}", file=sys.stderr)
    elif command == "bulk":
        result = bulk_upload_attachments(base, auth, argv[2], argv[3:])
        if result["failed"]:
            print(f"{len(result['failed'])} uploads failed", file=sys.stderr)
            return 1
    elif command == "upload":
        result = upload_attachment(base, auth, argv[2], argv[3])
        if "results" not in result:
            print(f"upload failed: {result}", file=sys.stderr)
            return 1
    else:
        print(f"unknown command {command}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
