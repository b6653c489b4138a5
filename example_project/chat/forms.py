from __future__ import annotations

from django import forms

from .models import Flag, Message


class MessageForm(forms.ModelForm):
    class Meta:
        model = Message
        fields = ["text"]
        widgets = {
            "text": forms.Textarea(
                attrs={"rows": 3, "maxlength": 2000, "placeholder": "Write a message…"}
            )
        }
        labels = {"text": ""}
        error_messages = {"text": {"required": "Write something first."}}

    def clean_text(self) -> str:
        text = self.cleaned_data["text"]  # already stripped by the form field
        if len(text) > 2000:
            raise forms.ValidationError("Keep it under 2,000 characters.")
        return text


class FlagForm(forms.ModelForm):
    class Meta:
        model = Flag
        fields = ["reason"]
        error_messages = {"reason": {"max_length": "Keep the reason under 200 characters."}}
